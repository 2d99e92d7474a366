// Iris screens (ADR 0144): the live guidance's ring and eye outline, and, in simulate mode,
// the "what the camera sees" control. The words themselves are shown by kiosk.js
// (data-live-when); the page works without this file, with its button.
"use strict";
(function () {
  const guide = document.querySelector("[data-iris-guide]");
  const eye = document.querySelector("[data-iris-eye]");
  if (guide && eye) {
    document.addEventListener("live-state", (e) => {
      const state = e.detail;
      if (state.guide === undefined) return;
      guide.dataset.guide = state.ready ? "ready" : String(state.guide);
      if (typeof state.eye_r === "number") {
        // The camera faces the resident: show it as a mirror would. The frame is 4:3.
        eye.setAttribute("cx", String((1 - state.eye_x) * 100));
        eye.setAttribute("cy", String(state.eye_y * 75));
        eye.setAttribute("r", String(state.eye_r * 100));
      } else {
        eye.setAttribute("r", "0");
      }
    });
  }

  // One capture per page: the button and the live state ("ready") do not both send it.
  for (const form of document.querySelectorAll("form[data-live-submit]")) {
    form.addEventListener("submit", (e) => {
      if (form.dataset.sent) e.preventDefault();
      else form.dataset.sent = "1";
    });
  }

  // Simulate mode: choosing what the camera sees shows it at once (and, after that, so does
  // choosing who); the button sends the same choice with the capture.
  const controls = document.querySelectorAll("select[data-iris-sim]");
  const scene = document.querySelector("select[data-sim-url]");
  for (const control of controls) {
    control.addEventListener("change", () => {
      if (control === scene) scene.dataset.chosen = "1";
      if (!scene.dataset.chosen) return;
      const form = new FormData(control.form);
      fetch(scene.dataset.simUrl, { method: "POST", body: form,
                                   headers: { "X-CSRFToken": document.body.dataset.csrf } });
    });
  }
})();
