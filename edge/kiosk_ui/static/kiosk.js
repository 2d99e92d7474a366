// The little JavaScript the kiosk needs: idle timeout, screen saver, keypads, live state.
// Every page works without it except the live door/booking updates (docs/ui.md).
"use strict";
(function () {
  const body = document.body;
  const secs = (name) => parseFloat(body.dataset[name]) * 1000;
  const idleTimeout = secs("idleTimeout");
  const idleWarning = secs("idleWarning");
  const screensaverAfter = secs("screensaver");
  const visit = body.dataset.visit === "1";
  const dialog = document.getElementById("idle-warning");
  const countdown = document.getElementById("idle-countdown");
  const saver = document.getElementById("screensaver");
  let warnTimer = 0, endTimer = 0, saverTimer = 0, tick = 0, liveSource = null;

  function endVisit() { document.getElementById("end-visit").submit(); }

  function showWarning() {
    let left = Math.round(idleWarning / 1000);
    countdown.textContent = String(left);
    dialog.showModal();
    tick = setInterval(() => { left -= 1; countdown.textContent = String(Math.max(left, 0)); }, 1000);
    endTimer = setTimeout(endVisit, idleWarning);
  }

  function restartTimers() {
    clearTimeout(warnTimer); clearTimeout(endTimer); clearTimeout(saverTimer); clearInterval(tick);
    if (visit) warnTimer = setTimeout(showWarning, idleTimeout);
    saverTimer = setTimeout(showSaver, screensaverAfter);
  }

  function showSaver() {
    saver.hidden = false;
    openLive(); // presence arrives on the live stream
  }

  function wake() {
    saver.hidden = true;
    restartTimers();
  }

  // The first touch on a dark screen only wakes it: the overlay takes the whole tap.
  for (const type of ["pointerdown", "pointerup", "mousedown", "mouseup", "touchstart", "touchend"]) {
    saver.addEventListener(type, (e) => { e.preventDefault(); e.stopPropagation(); }, { passive: false });
  }
  saver.addEventListener("click", (e) => { e.preventDefault(); e.stopPropagation(); wake(); });

  document.getElementById("idle-continue").addEventListener("click", () => {
    dialog.close();
    fetch("/session/continue", { method: "POST", headers: { "X-CSRFToken": body.dataset.csrf } });
    restartTimers();
  });
  for (const type of ["pointerdown", "keydown"]) {
    document.addEventListener(type, () => { if (saver.hidden && !dialog.open) restartTimers(); }, true);
  }

  // On-screen keypads type into the input they are for.
  for (const pad of document.querySelectorAll(".keypad")) {
    const input = document.getElementById(pad.dataset.for);
    pad.addEventListener("click", (e) => {
      const key = e.target.closest("[data-key]");
      if (!key) return;
      const k = key.dataset.key;
      const max = input.maxLength > 0 ? input.maxLength : 64;
      if (k === "back") input.value = input.value.slice(0, -1);
      else if (k === "clear") input.value = "";
      else if (input.value.length < max) input.value += k;
      input.dispatchEvent(new Event("input", { bubbles: true }));
    });
  }

  // Live state: the server pushes the whole state of what this page shows (server-sent events).
  function applyState(state) {
    if (state.presence && !saver.hidden) wake();
    document.dispatchEvent(new CustomEvent("live-state", { detail: state }));  // page scripts (iris.js)
    for (const el of document.querySelectorAll("[data-live-when]")) {
      const [key, value] = el.dataset.liveWhen.split("=");  // "state=a" or "state=a|b"
      el.hidden = !value.split("|").includes(String(state[key]));
    }
    for (const el of document.querySelectorAll("[data-live-text]")) {
      const value = state[el.dataset.liveText];
      if (value !== undefined && value !== null) el.textContent = String(value);
    }
    for (const form of document.querySelectorAll("form[data-live-submit]")) {
      const [key, value] = form.dataset.liveSubmit.split("=");
      if (String(state[key]) === value && !form.dataset.sent) { form.dataset.sent = "1"; form.submit(); }
    }
  }

  function openLive() {
    if (liveSource) return;
    const topic = body.dataset.liveTopic || "presence";
    liveSource = new EventSource(body.dataset.liveUrl + "?topic=" + encodeURIComponent(topic));
    liveSource.addEventListener("state", (e) => applyState(JSON.parse(e.data)));
  }

  // After the first frame: the page is server-rendered in its current state already, and a
  // stream on the scan topic starts the QR scanner (a camera and a decoder on the same CPU),
  // which would otherwise compete with this page's first paint (ADR 0129).
  if (body.dataset.liveTopic) requestAnimationFrame(() => setTimeout(openLive, 0));
  // A page restored from the back-forward cache could show an old door state: reload it.
  window.addEventListener("pageshow", (e) => { if (e.persisted) location.reload(); });
  restartTimers();
})();
