/* Voice note (templates/_voice.html, ADR 0128): record up to data-max-seconds with
   MediaRecorder, show the seconds left, stop by itself at the limit, and put the clip into the
   form's hidden file input so it is sent with the form. Simulate mode without a microphone:
   a generated tone stands in for the voice. */
(function () {
  "use strict";

  function toneStream() {
    var context = new AudioContext();
    var oscillator = context.createOscillator();
    var destination = context.createMediaStreamDestination();
    oscillator.frequency.value = 440;
    oscillator.connect(destination);
    oscillator.start();
    return { stream: destination.stream, close: function () { oscillator.stop(); context.close(); } };
  }

  function microphone(simulate) {
    var media = navigator.mediaDevices;
    var asked = media && media.getUserMedia ? media.getUserMedia({ audio: true }) : Promise.reject(new Error("none"));
    return asked.then(function (stream) {
      return { stream: stream, close: function () { stream.getTracks().forEach(function (t) { t.stop(); }); } };
    }, function (error) {
      if (simulate) { return toneStream(); }
      throw error;
    });
  }

  function setUp(box) {
    var max = Number(box.dataset.maxSeconds || 60);
    var record = box.querySelector("[data-voice-record]");
    var stop = box.querySelector("[data-voice-stop]");
    var discard = box.querySelector("[data-voice-discard]");
    var state = box.querySelector("[data-voice-state]");
    var playback = box.querySelector("[data-voice-playback]");
    var file = box.querySelector("[data-voice-file]");
    var recorder = null, source = null, ticker = null, startedAt = 0, parts = [];
    var form = box.closest("form"), submitWhenKept = false;

    function words(name, n) { return box.dataset["words" + name].replace("{n}", String(n)); }
    function show(recording) {
      box.classList.toggle("recording", recording);
      record.hidden = recording;
      stop.hidden = !recording;
      discard.hidden = recording || !file.files.length;
    }
    function elapsed() { return Math.min(max, Math.round((Date.now() - startedAt) / 1000)); }
    function tick() {
      var left = max - elapsed();
      state.textContent = words("Recording", left);
      if (left <= 0) { finish(); }
    }
    function finish() {
      if (recorder && recorder.state !== "inactive") { recorder.stop(); }
      clearInterval(ticker);
    }
    function keep(blob, seconds) {
      var type = (blob.type || "audio/webm").split(";")[0];
      var transfer = new DataTransfer();
      transfer.items.add(new File([blob], "voice-note." + (type.split("/")[1] || "webm"), { type: type }));
      file.files = transfer.files;
      playback.src = URL.createObjectURL(blob);
      playback.hidden = false;
      state.textContent = words("Ready", seconds);
      show(false);
      if (submitWhenKept) { submitWhenKept = false; form.requestSubmit(); }
    }

    record.addEventListener("click", function () {
      record.disabled = true;
      microphone(box.dataset.simulate === "1").then(function (opened) {
        source = opened;
        parts = [];
        recorder = new MediaRecorder(source.stream);
        recorder.addEventListener("dataavailable", function (e) { if (e.data.size) { parts.push(e.data); } });
        recorder.addEventListener("stop", function () {
          var seconds = Math.max(1, elapsed());
          source.close();
          keep(new Blob(parts, { type: recorder.mimeType || "audio/webm" }), seconds);
        });
        startedAt = Date.now();
        recorder.start(1000);
        ticker = setInterval(tick, 250);
        tick();
        show(true);
        stop.focus();
      }).catch(function () {
        state.textContent = words("NoMicrophone");
      }).then(function () { record.disabled = false; });
    });
    stop.addEventListener("click", finish);
    if (form) {
      // Sending while still recording: stop first, so what was said goes with the form.
      form.addEventListener("submit", function (event) {
        if (recorder && recorder.state === "recording") {
          event.preventDefault();
          submitWhenKept = true;
          finish();
        }
      });
    }
    discard.addEventListener("click", function () {
      file.value = "";
      playback.hidden = true;
      playback.removeAttribute("src");
      state.textContent = "";
      show(false);
      record.focus();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-voice]").forEach(setUp);
  });
})();
