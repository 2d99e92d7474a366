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

  // Simulate mode: changing who or what is at the camera shows it at once.
  const controls = document.querySelectorAll("select[data-iris-sim]");
  const scene = document.querySelector("select[data-sim-url]");
  for (const control of controls) {
    control.addEventListener("change", () => {
      const form = new FormData(control.form);
      fetch(scene.dataset.simUrl, { method: "POST", body: form,
                                   headers: { "X-CSRFToken": document.body.dataset.csrf } });
    });
  }
})();
