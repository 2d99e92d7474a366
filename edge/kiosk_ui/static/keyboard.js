// The on-screen keyboard: the kiosk has a touch screen and no physical keyboard.
// Focusing a text field moves the keyboard (templates/_keyboard.html) right under that field.
// Modes: pinyin (candidates from /ime/pinyin), handwriting (strokes to /ime/handwriting),
// Latin letters and digits (waybills). Quick-phrase buttons ([data-phrase-for]) type a whole
// phrase. Nothing typed is kept by this script beyond the field itself.
"use strict";
(function () {
  const kb = document.getElementById("keyboard");
  if (!kb) return;
  const FIELDS = 'input[type=text]:not([inputmode=none]), input:not([type]):not([inputmode=none]), textarea';
  const typedView = kb.querySelector(".kb-typed");
  const candidateBar = kb.querySelector(".kb-candidates");
  const canvas = kb.querySelector(".kb-canvas");
  const pinyinCache = new Map();
  let field = null, mode = kb.dataset.defaultMode, typed = "", shift = false, asked = 0;

  // data-kb-owned: a field this keyboard serves (and set to inputmode=none itself)
  const isField = (el) => el instanceof HTMLElement && (el.matches(FIELDS) || el.dataset.kbOwned === "1") &&
    !el.readOnly && !el.disabled && el.dataset.keyboard !== "off";

  // ---- opening, closing, placing ----
  function open(target) {
    if (field !== target) {
      dropComposition();
      field = target;
      shift = target.autocapitalize === "characters";  // waybills: capitals first
    }
    target.after(kb);  // in the page, under the field: the field stays in view, uncovered
    kb.hidden = false;
    setMode(target.dataset.keyboard || mode);
    target.dataset.kbOwned = "1";
    target.setAttribute("inputmode", "none");  // no system keyboard on top of ours
  }

  // The field and the whole keyboard on screen, the field first if both do not fit.
  function keepInView() {
    if (!field || kb.hidden) return;
    const top = field.getBoundingClientRect().top - 16;
    const bottom = kb.getBoundingClientRect().bottom + 16;
    if (bottom > innerHeight) scrollBy(0, Math.min(top, bottom - innerHeight));
    else if (top < 0) scrollBy(0, top);
  }

  function close() {
    dropComposition();
    kb.hidden = true;
    field = null;
  }

  function dropComposition() { typed = ""; showTyped(); clearStrokes(); }

  document.addEventListener("focusin", (e) => { if (isField(e.target)) open(e.target); });
  // A tap elsewhere closes the keyboard only once that tap's click is done: closing on its
  // pointerdown would move the page under the finger, and the click would land on nothing.
  // (Moving to another field moves the page too: the focus, not the click target, decides.)
  document.addEventListener("click", (e) => {
    if (isField(e.target) && kb.hidden) return open(e.target);  // tapped again after "Done"
    // the path, not contains(): a tapped candidate has already left the page
    if (!kb.hidden && !isField(document.activeElement) && !e.composedPath().includes(kb)) close();
  });
  // Taps on the keyboard must not take the focus (and the caret) away from the field.
  for (const type of ["mousedown", "pointerdown"]) {
    kb.addEventListener(type, (e) => { if (e.target !== canvas) e.preventDefault(); });
  }

  // ---- modes ----
  function setMode(next) {
    if (next !== "pinyin") { typed = ""; showTyped(); }
    mode = next;
    kb.dataset.mode = next;
    for (const b of kb.querySelectorAll(".kb-mode")) b.setAttribute("aria-pressed", String(b.dataset.mode === next));
    kb.querySelector('[data-pane="keys"]').hidden = next === "handwriting";
    kb.querySelector('[data-pane="handwriting"]').hidden = next !== "handwriting";
    for (const el of kb.querySelectorAll("[data-latin-only]")) el.hidden = next !== "latin";
    for (const el of kb.querySelectorAll("[data-pinyin-only]")) el.hidden = next !== "pinyin";
    showLetters();
    if (next === "handwriting") sizeCanvas();
    keepInView();
  }

  function showLetters() {
    const upper = mode === "latin" && shift;
    for (const k of kb.querySelectorAll(".kb-key.letter")) {
      k.textContent = upper ? k.dataset.key.toUpperCase() : k.dataset.key;
    }
    kb.querySelector('[data-key="shift"]').setAttribute("aria-pressed", String(shift));
  }

  // ---- typing into the field ----
  function insert(text) {
    if (!field) return;
    const max = field.maxLength > 0 ? field.maxLength : Infinity;
    const start = field.selectionStart ?? field.value.length;
    const end = field.selectionEnd ?? start;
    const room = max - (field.value.length - (end - start));
    if (room <= 0) return;
    field.setRangeText(text.slice(0, room), start, end, "end");
    field.dispatchEvent(new Event("input", { bubbles: true }));
  }

  function deleteBack() {
    if (!field) return;
    const start = field.selectionStart ?? field.value.length;
    const end = field.selectionEnd ?? start;
    if (start !== end) field.setRangeText("", start, end, "end");
    else if (start > 0) {
      // one character, even a character outside the BMP (two UTF-16 units)
      const before = Array.from(field.value.slice(0, start));
      const removed = before.pop().length;
      field.setRangeText("", start - removed, start, "end");
    }
    field.dispatchEvent(new Event("input", { bubbles: true }));
  }

  kb.addEventListener("click", (e) => {
    const button = e.target.closest("button");
    if (!button || !kb.contains(button)) return;
    if (button.dataset.mode) return setMode(button.dataset.mode);
    if (button.dataset.text !== undefined) return choose(button);
    const key = button.dataset.key;
    if (key === "done") { const was = field; close(); if (was) was.blur(); return; }
    if (key === "back") {
      if (typed) { typed = typed.slice(0, -1); return lookUp(); }
      return deleteBack();
    }
    if (key === "space") {
      const first = candidateBar.querySelector("button");
      if (typed && first) return choose(first);
      return insert(" ");
    }
    if (key === "shift") { shift = !shift; return showLetters(); }
    if (key === "rewrite") return clearStrokes();
    if (mode === "pinyin" && /^[a-z]$/.test(key)) {
      if (typed.length < 60) typed += key;
      return lookUp();
    }
    insert(mode === "latin" && shift ? key.toUpperCase() : key);
  });

  // ---- candidates ----
  function showTyped() {
    typedView.textContent = typed;
    if (!typed && mode !== "handwriting") showCandidates([], "");
  }

  function showCandidates(list, forWhat) {
    const buttons = list.map((c) => {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "kb-candidate";
      b.lang = "zh-CN";
      b.textContent = c.text;
      b.dataset.text = c.text;
      b.dataset.consumed = String(c.consumed || 0);
      return b;
    });
    candidateBar.replaceChildren(...buttons);
    candidateBar.removeAttribute("aria-busy");
    candidateBar.scrollLeft = 0;
    candidateBar.dataset.for = forWhat;  // what these candidates answer (the benchmark waits on it)
  }

  function choose(button) {
    // Candidates for fewer letters than typed (the answer to the latest tap is on its way)
    // would use up the wrong number of letters: they wait.
    if (mode === "pinyin" && candidateBar.dataset.for !== typed) return;
    insert(button.dataset.text);
    if (mode === "pinyin") {
      typed = typed.slice(Number(button.dataset.consumed) || typed.length);
      lookUp();
    } else {
      clearStrokes();
    }
  }

  async function lookUp() {
    typedView.textContent = typed;
    if (!typed) return showCandidates([], "");
    const query = typed, ticket = ++asked;
    candidateBar.setAttribute("aria-busy", "true");
    let list = pinyinCache.get(query);
    if (!list) {
      try {
        const response = await fetch("/ime/pinyin?q=" + encodeURIComponent(query));
        list = response.ok ? (await response.json()).candidates : [];
      } catch (err) { list = []; }
      pinyinCache.set(query, list);
    }
    if (ticket === asked) showCandidates(list, query);  // only the answer to the latest tap
  }

  // ---- handwriting ----
  // Two square boxes side by side, one character in each, in turn: the first stroke in the
  // other box types the first candidate of the character in this one and starts the next, so a
  // resident writes on without a tap between characters (ADR 0129). Square, because zinnia
  // scales x and y by the given width and height; strokes are kept in their box's coordinates.
  let strokes = [], stroke = null, context = null, cell = 0;

  const cellSize = () => canvas.height;
  const cells = () => Math.max(1, Math.floor(canvas.width / cellSize()));

  function sizeCanvas() {
    if (!canvas) return;
    const box = canvas.getBoundingClientRect();
    canvas.width = Math.round(box.width);
    canvas.height = Math.round(box.height);
    context = canvas.getContext("2d");
    context.lineWidth = 8; context.lineCap = "round"; context.lineJoin = "round";
    context.strokeStyle = "#111";
    redraw();
  }

  function redraw() {
    if (!context) return;
    context.clearRect(0, 0, canvas.width, canvas.height);
    const size = cellSize();
    context.save();  // the line between the boxes: thin, dashed
    context.lineWidth = 3; context.strokeStyle = "#5c5c5c"; context.setLineDash([12, 10]);
    for (let i = 1; i < cells(); i++) {
      context.beginPath(); context.moveTo(i * size, 10); context.lineTo(i * size, canvas.height - 10); context.stroke();
    }
    context.restore();
    const dx = cell * size;
    for (const s of strokes) {
      context.beginPath();
      s.forEach(([x, y], i) => (i ? context.lineTo(x + dx, y) : context.moveTo(x + dx, y)));
      if (s.length === 1) context.lineTo(s[0][0] + dx + 0.1, s[0][1]);
      context.stroke();
    }
  }

  function clearStrokes() {
    strokes = []; stroke = null;
    redraw();
    if (mode === "handwriting") showCandidates([], "");
  }

  // Where the pointer is, in the canvas and in the box it is over.
  function point(e) {
    const box = canvas.getBoundingClientRect();
    return [Math.round(e.clientX - box.left), Math.round(e.clientY - box.top)];
  }
  function inCell([x, y]) {
    const size = cellSize();
    return [Math.min(Math.max(x - cell * size, 0), size), Math.min(Math.max(y, 0), size)];
  }

  // A new character in the other box: the one written so far goes in as its first candidate.
  function commitWritten() {
    const written = strokes, shown = candidateBar.dataset.for === "strokes:" + written.length &&
      candidateBar.querySelector("button");
    strokes = []; stroke = null;
    showCandidates([], "");
    if (shown) return insert(shown.dataset.text);
    ++asked;  // its answer was still on the way: ask again for those strokes, type the first
    classify(written).then((list) => { if (list.length) insert(list[0].text); }, () => {});
  }

  if (canvas) {
    canvas.addEventListener("pointerdown", (e) => {
      e.preventDefault();
      canvas.setPointerCapture(e.pointerId);
      const at = Math.min(cells() - 1, Math.floor(point(e)[0] / cellSize()));
      if (at !== cell) {
        if (strokes.length) commitWritten();
        cell = at;
      }
      stroke = [inCell(point(e))];
      strokes.push(stroke);
      redraw();
    });
    canvas.addEventListener("pointermove", (e) => {
      if (!stroke) return;
      const [x, y] = inCell(point(e)), [lx, ly] = stroke[stroke.length - 1];
      if (Math.abs(x - lx) + Math.abs(y - ly) < 3) return;  // zinnia wants shape, not every pixel
      stroke.push([x, y]);
      redraw();
    });
    const end = () => { if (stroke) { stroke = null; recognise(); } };
    canvas.addEventListener("pointerup", end);
    canvas.addEventListener("pointercancel", end);
  }

  async function classify(written) {
    const size = cellSize();
    const response = await fetch("/ime/handwriting", {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRFToken": document.body.dataset.csrf },
      body: JSON.stringify({ width: size, height: size, strokes: written }),
    });
    const answer = await response.json();
    return response.ok ? answer.candidates : [];
  }

  async function recognise() {
    const ticket = ++asked, count = strokes.length;
    let list = [];
    try { list = await classify(strokes); } catch (err) { list = []; }
    if (ticket === asked) showCandidates(list, "strokes:" + count);
  }

  // ---- quick phrases: one tap types a whole phrase into its field ----
  document.addEventListener("click", (e) => {
    const phrase = e.target.closest("[data-phrase-for]");
    if (!phrase) return;
    const target = document.getElementById(phrase.dataset.phraseFor);
    if (!target) return;
    const text = phrase.dataset.phrase;
    const joiner = target.value && !/[，。、,.\s]$/.test(target.value) ? "，" : "";
    const room = (target.maxLength > 0 ? target.maxLength : Infinity) - target.value.length;
    if (room >= joiner.length + text.length) target.value += joiner + text;
    target.dispatchEvent(new Event("input", { bubbles: true }));
  });
  // Phrases of the chosen category only ([data-shown-with="name=value"]).
  function showChosenGroups() {
    for (const el of document.querySelectorAll("[data-shown-with]")) {
      const [name, value] = el.dataset.shownWith.split("=");
      const chosen = document.querySelector(`input[name="${name}"]:checked`);
      el.hidden = !chosen || chosen.value !== value;
    }
  }
  document.addEventListener("change", showChosenGroups);
  showChosenGroups();

  addEventListener("resize", () => {
    if (!kb.hidden && mode === "handwriting") sizeCanvas();
    keepInView();
  });
  // Nothing more at load (the keyboard is set up on its first opening): pages paint sooner.
  if (isField(document.activeElement)) open(document.activeElement);  // autofocus ran before us
})();
