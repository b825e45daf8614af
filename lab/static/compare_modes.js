/* Veo Prompt Lab: compare modes past the wipe, and each take's pre-screen badges.
 *
 * An extension of the synchronized player (compare_player.js, loaded first), used
 * twice like it: served with the app and inlined into the standalone report.
 *
 *   flip        keys 1-9 (or a take's button) show that take alone, full size, at the same
 *               moment; the same key again (or 0 / Esc) returns to the grid. Every take keeps
 *               playing underneath, so a flip is instant and nothing drifts.
 *   difference  |A - B| of two takes, brightened by a gain: a CSS blend (mix-blend-mode:
 *               difference + filter: brightness), because a file:// video taints a canvas.
 *   offset      per take, in frames: it shows that many frames later (or earlier) than the
 *               shared clock, so actions that start at different moments line up. A change
 *               fires "cp-offsets" on the player's root ({set_key, offsets}) for the app to keep.
 *   solo        hear one take, the rest muted: Shift+1-9, or S to go through them in turn.
 *   badges      the pre-screen's findings under each take ("frozen 2.1–3.4 s"); a click
 *               goes to that moment.
 */
(function () {
  "use strict";
  if (window.CompareModesLoaded) return;
  window.CompareModesLoaded = true;

  var MAX_GAIN = 16;

  // The player's own DOM helper (the extensions run only once a player exists).
  function el(tag, attrs, children) { return window.ComparePlayer.el(tag, attrs, children); }

  function Modes(player) {
    this.player = player;
    this.root = player.root;
    this.flipped = null;
    this.diff = false;
    this.build();
  }

  Modes.prototype.playable = function () { return this.player.playable(); };

  Modes.prototype.build = function () {
    var self = this;
    var takes = this.playable();
    // The bar under the player's own controls.
    this.flipButtons = takes.map(function (c, n) {
      return el("button", {type: "button", class: "cpm-flip-btn", "data-letter": c.letter,
        title: "Show " + c.letter + " alone, full size (key " + (n + 1) + "; again to return to the grid)",
        text: c.letter, onclick: function () { self.flip(c); }});
    });
    this.gridButton = el("button", {type: "button", class: "cpm-grid-btn cpm-on", title: "Back to the grid (0 or Esc)",
      text: "Grid", onclick: function () { self.flip(null); self.setDiff(false); }});
    var options = takes.map(function (c) { return el("option", {value: c.letter, text: c.letter}); });
    this.diffA = el("select", {class: "cpm-diff-a-select", "aria-label": "Difference: first take"}, options);
    this.diffB = el("select", {class: "cpm-diff-b-select", "aria-label": "Difference: second take"},
      options.map(function (o) { return o.cloneNode(true); }));
    if (takes.length > 1) this.diffB.value = takes[1].letter;
    this.diffButton = el("button", {type: "button", class: "cpm-diff-btn", title: "Difference of two takes (D)",
      text: "Difference", onclick: function () { self.setDiff(!self.diff); }});
    this.gain = el("input", {type: "range", class: "cpm-gain", min: "1", max: String(MAX_GAIN), step: "0.5", value: "4",
      "aria-label": "Difference gain"});
    this.gainText = el("span", {class: "cpm-gain-text", text: "×4"});
    var onPair = function () { if (self.diff) self.setDiff(true); };
    this.diffA.addEventListener("change", onPair);
    this.diffB.addEventListener("change", onPair);
    this.gain.addEventListener("input", function () { self.applyGain(); });
    this.soloText = el("span", {class: "cpm-solo-text", text: ""});
    var groups = [
      el("span", {class: "cpm-group"}, [el("span", {class: "cpm-name", text: "Flip"}), this.gridButton].concat(this.flipButtons))
    ];
    if (takes.length >= 2) {
      groups.push(el("span", {class: "cpm-group"}, [this.diffButton, this.diffA, el("span", {text: "−"}), this.diffB,
        el("span", {class: "cpm-name", text: "gain"}), this.gain, this.gainText]));
    }
    groups.push(el("span", {class: "cpm-group cpm-keys", text: "Keys: 1–9 flip · D difference · S or Shift+1–9 solo"}));
    groups.push(this.soloText);
    this.bar = el("div", {class: "cpm-bar"}, groups);
    var controls = this.root.querySelector(".cp-controls");
    if (controls && controls.nextSibling) this.root.insertBefore(this.bar, controls.nextSibling);
    else this.root.appendChild(this.bar);

    this.player.cells.forEach(function (c) { self.decorate(c); });
    this.renderLegend();

    this._keys = function (event) { self.onKey(event); };
    document.addEventListener("keydown", this._keys);
    this.player.on("update", function () { self.refresh(); });
    // The player's own A/B wipe or flicker takes the grid over: flip and difference step aside.
    this.player.on("mode", function (event) {
      if (event.mode !== "grid" && (self.flipped || self.diff)) { self.flipped = null; self.setDiff(false); self.flip(null); }
    });
    this.player.on("destroy", function () { document.removeEventListener("keydown", self._keys); });
    this.applyGain();
  };

  /* Badges, lineage and the offset box of one cell, under its heading. */
  Modes.prototype.decorate = function (c) {
    var self = this;
    c.modes = c.modes || {};
    if (!c.modes.box) {
      // The player's slot under the cell's heading (shared with other extensions).
      c.modes.box = el("div", {class: "cpm-cell"});
      (c.slot || c.node).appendChild(c.modes.box);
    }
    var box = c.modes.box;
    box.innerHTML = "";
    var screen = c.data.screen || {state: "pending", badges: []};
    var badges = el("div", {class: "cpm-badges", "data-task": c.data.task_id});
    if (screen.state === "pending") {
      badges.appendChild(el("span", {class: "cpm-badge cpm-pending", text: "pre-screen pending",
        title: "This take is still being checked for frozen, black, silent, cut and flickering stretches"}));
    } else if (screen.state === "off") {
      // The lab's pre-screen is off: no screen is coming, so say so rather than "pending".
      var off = self.player.data.not_screened;  // lab.compare.set.player_data sends it with every "off" state
      badges.appendChild(el("span", {class: "cpm-badge cpm-pending", text: off.text, title: off.title}));
    } else if (!screen.badges.length) {
      badges.appendChild(el("span", {class: "cpm-badge cpm-clean", text: "no issues found",
        title: "The pre-screen found no frozen, black, silent, cut or flickering stretch"}));
    }
    screen.badges.forEach(function (badge) {
      var attrs = {type: "button", class: "cpm-badge cpm-" + badge.kind, title: badge.title, text: badge.text};
      if (badge.at != null && c.video) {
        attrs["data-at"] = String(badge.at);
        attrs.title = badge.title + " Click to go to " + badge.at.toFixed(2) + " s.";
        attrs.onclick = function () { self.goTo(c, badge.at); };
        badges.appendChild(el("button", attrs));
      } else {
        badges.appendChild(el("span", {class: attrs.class, title: attrs.title, text: attrs.text}));
      }
    });
    box.appendChild(badges);
    var parent = c.data.parent;
    if (parent) {
      var from = parent.letter ? "from " + parent.letter : "from " + parent.task_id.slice(-6) + " (not in this set)";
      box.appendChild(el("div", {class: "cpm-parent", title: "Started from run " + parent.task_id,
        text: "↳ " + from + " · " + parent.changes}));
    }
    if (c.video) {
      var input = el("input", {type: "number", class: "cpm-offset", step: "1", min: "-240", max: "240",
        value: String(c.data.offset_frames || 0), "aria-label": "Offset of " + c.letter + " in frames",
        title: "Show this take that many frames later (negative: earlier), so the action lines up"});
      input.addEventListener("change", function () {
        var frames = Math.max(-240, Math.min(240, Math.round(parseFloat(input.value) || 0)));
        input.value = String(frames);
        self.player.setOffset(c, frames);
        self.saveOffsets();
      });
      box.appendChild(el("label", {class: "cpm-offset-label"}, [document.createTextNode("offset "), input,
        document.createTextNode(" frames")]));
    }
  };

  Modes.prototype.refresh = function () {
    var self = this;
    this.player.cells.forEach(function (c) { self.decorate(c); });
  };

  Modes.prototype.saveOffsets = function () {
    var offsets = {};
    this.playable().forEach(function (c) { offsets[c.data.task_id] = c.data.offset_frames || 0; });
    this.root.dispatchEvent(new CustomEvent("cp-offsets", {bubbles: true,
      detail: {set_key: this.player.data.set_key, offsets: offsets}}));
  };

  /* A badge's time is the take's own: the clock goes where this take shows that moment. */
  Modes.prototype.goTo = function (c, at) {
    if (this.player.playing) this.player.pause();
    this.player.seek(Math.max(0, at - (c.offset || 0)) + 0.5 / this.player.fps);
  };

  Modes.prototype.clearAB = function () {
    if (this.player.mode !== "grid" && this.player.setMode) {
      this.player.setMode("grid");
      if (this.player.modeSelect) this.player.modeSelect.value = "grid";
    }
  };

  /* Show one take alone (null: the grid). Only classes change: every take keeps playing. */
  Modes.prototype.flip = function (c) {
    if (c && this.flipped === c) c = null;
    this.clearAB();
    if (this.diff) this.setDiff(false);
    this.flipped = c;
    this.root.classList.toggle("cpm-flip", !!c);
    this.player.cells.forEach(function (cell) { cell.node.classList.toggle("cpm-shown", cell === c); });
    this.flipButtons.forEach(function (b) { b.classList.toggle("cpm-on", !!c && b.getAttribute("data-letter") === c.letter); });
    this.gridButton.classList.toggle("cpm-on", !c && !this.diff);
  };

  Modes.prototype.byLetter = function (letter) {
    return this.playable().filter(function (c) { return c.letter === letter; })[0] || null;
  };

  Modes.prototype.setDiff = function (on) {
    var a = this.byLetter(this.diffA.value), b = this.byLetter(this.diffB.value);
    if (on && (!a || !b || a === b)) {
      this.soloText.textContent = "Difference needs two different takes";
      on = false;
    }
    if (on) {
      this.clearAB();
      if (this.flipped) this.flip(null);
    }
    this.diff = on;
    this.root.classList.toggle("cpm-diff", on);
    this.player.cells.forEach(function (cell) {
      cell.node.classList.toggle("cpm-diff-a", on && cell === a);
      cell.node.classList.toggle("cpm-diff-b", on && cell === b);
    });
    this.diffButton.classList.toggle("cpm-on", on);
    this.gridButton.classList.toggle("cpm-on", !on && !this.flipped);
    if (on) this.soloText.textContent = "|" + a.letter + " − " + b.letter + "|: black where they match";
    else if (this.soloText.textContent.indexOf("|") === 0) this.soloText.textContent = "";
  };

  Modes.prototype.applyGain = function () {
    var gain = parseFloat(this.gain.value) || 1;
    this.root.style.setProperty("--cpm-gain", String(gain));
    this.gainText.textContent = "×" + gain;
  };

  Modes.prototype.solo = function (c) {
    this.player.hear(c);
    this.soloText.textContent = c ? "Hearing " + c.letter + " alone" : "All muted";
  };

  Modes.prototype.soloNext = function () {
    var takes = this.playable();
    var at = takes.indexOf(this.player.heard);
    this.solo(at + 1 < takes.length ? takes[at + 1] : null);
  };

  Modes.prototype.onKey = function (event) {
    if (!this.player.ownsKey(event) && !(event.shiftKey && this.ownsShifted(event))) return;
    var takes = this.playable();
    var digit = /^(Digit|Numpad)([0-9])$/.exec(event.code || "");
    if (digit) {
      var n = parseInt(digit[2], 10);
      if (n === 0) { event.preventDefault(); this.flip(null); this.setDiff(false); return; }
      if (n > takes.length) return;
      event.preventDefault();
      if (event.shiftKey) this.solo(this.player.heard === takes[n - 1] ? null : takes[n - 1]);
      else this.flip(takes[n - 1]);
    } else if (event.key === "Escape") {
      if (this.flipped || this.diff) { event.preventDefault(); this.flip(null); this.setDiff(false); }
    } else if (event.key === "d" || event.key === "D") {
      if (takes.length >= 2) { event.preventDefault(); this.setDiff(!this.diff); }
    } else if (event.key === "s" || event.key === "S") {
      event.preventDefault();
      this.soloNext();
    }
  };

  // ownsKey refuses modifier keys; Shift (solo) is ours when nothing else stops it.
  Modes.prototype.ownsShifted = function (event) {
    var shiftless = {target: event.target, ctrlKey: event.ctrlKey, metaKey: event.metaKey, altKey: event.altKey};
    return this.player.ownsKey(shiftless);
  };

  Modes.prototype.renderLegend = function () {
    var meanings = this.player.data.badge_meanings;
    if (!meanings) return;
    var names = {frozen: "frozen …", black: "black …", silent: "silent", no_audio: "no audio", cut: "N cuts",
      flicker: "flicker high at …", error: "not screened"};
    var items = Object.keys(names).filter(function (k) { return meanings[k]; }).map(function (k) {
      return el("li", {}, [el("span", {class: "cpm-badge cpm-" + k, text: names[k]}), document.createTextNode(" " + meanings[k])]);
    });
    var legend = el("details", {class: "cpm-legend"}, [el("summary", {text: "What the badges mean"}), el("ul", {}, items)]);
    var sim = this.root.querySelector(".cp-sim");
    if (sim) this.root.insertBefore(legend, sim); else this.root.appendChild(legend);
  };

  /* For tests: the modes' state. */
  Modes.prototype.state = function () {
    return {flipped: this.flipped ? this.flipped.letter : null, diff: this.diff,
      gain: parseFloat(this.gain.value), heard: this.player.heard ? this.player.heard.letter : null};
  };

  var install = function (player) { player.modes = new Modes(player); };
  // Loaded before the player, it queues itself (compare_player.js reads the queue when it loads).
  if (window.ComparePlayer) window.ComparePlayer.extend(install);
  else (window.ComparePlayerExtensions = window.ComparePlayerExtensions || []).push(install);
})();
