/* Veo Prompt Lab: the synchronized comparison player.
 *
 * One file, used twice: served with the app (the Compare tab) and inlined into
 * the standalone report, so both run the same code. No dependencies, no network.
 *
 *   const player = ComparePlayer.mount(element, data);
 *   data = {fps, cells: [{task_id, label, fields, field_names, differs, proxy, original, width, height,
 *                         rating, note, picked, status, problem}], similarity: [{a, b, ssim_mean, ssim_min, timeline}]}
 *
 * The longest playable video leads; while playing, a cell that drifts from the
 * leader is sped up or slowed down (up to 10 %) until it is back on its frame, and
 * only one more than a quarter second away is put back on its time by a seek. Frame steps
 * land in the middle of a frame (k + 0.5) / fps so every decoder shows frame k.
 *
 * Extensions (the review layer, compare modes) live in files of their own and hook in here:
 *   ComparePlayer.extend(function (player) { ... })  runs for every player mounted (now and later)
 *   player.on(name, fn) / player.off(name, fn)       events: "time" {t} (each paint), "seek" {t},
 *       "play", "pause", "mode" {mode}, "enlarge" {entry, on}, "update" {data}, "destroy"
 *   player.cells[i]: {data, video, node, media, slot, letter}  (slot: a box under the cell's head)
 *   player.scrubTrack (the scrubber's box, for markers), player.aside (a column beside the grid),
 *   player.controls, player.seek(t), player.pause(), player.time(), player.duration(), player.cellOf(taskId)
 *   player.ownsKey(event): whether a keydown is this player's (shown, nobody typing, no Ctrl/Alt/Meta)
 *   player.setOffset(entry, frames): a cell shows the frame that many frames after (negative: before)
 *       the shared clock, so takes whose action starts at different moments line up (data.offset_frames)
 */
(function () {
  "use strict";
  if (window.ComparePlayer) return;

  // Extensions loaded before the player queue themselves here (script order does not matter).
  var EXTENSIONS = (window.ComparePlayerExtensions || []).slice();
  var SPEEDS = [0.25, 0.5, 0.75, 1, 1.25, 1.5, 2];
  var FIELD_ORDER = ["seed", "model", "resolution", "aspect_ratio", "duration", "size", "image", "cost_usd", "status"];

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    attrs = attrs || {};
    for (var key in attrs) {
      if (!Object.prototype.hasOwnProperty.call(attrs, key) || attrs[key] == null) continue;
      if (key === "class") node.className = attrs[key];
      else if (key === "text") node.textContent = attrs[key];
      else if (key.slice(0, 2) === "on") node.addEventListener(key.slice(2), attrs[key]);
      else node.setAttribute(key, attrs[key]);
    }
    (children || []).forEach(function (child) { if (child) node.appendChild(typeof child === "string" ? document.createTextNode(child) : child); });
    return node;
  }

  function fmt(t) { return (Math.max(0, t) || 0).toFixed(2) + " s"; }

  function heat(value) {
    // 0.5 or less: red; 1.0: green. SSIM of unrelated takes sits around 0.5-0.8.
    var x = Math.max(0, Math.min(1, (value - 0.5) / 0.5));
    return "hsl(" + Math.round(x * 120) + ", 70%, " + Math.round(88 - x * 18) + "%)";
  }

  function Player(root, data) {
    this.root = root;
    this.data = data;
    this.fps = data.fps || 24;
    this.cells = [];
    this.playing = false;
    this.loop = true;
    this.rate = 1;
    this.mode = "grid";
    this.realigned = 0;
    this.heard = null;
    this.row = null;
    this._raf = null;
    this._flicker = null;
    this._handlers = {};
    this.build();
  }

  Player.prototype.on = function (name, fn) { (this._handlers[name] = this._handlers[name] || []).push(fn); return this; };

  Player.prototype.off = function (name, fn) {
    this._handlers[name] = (this._handlers[name] || []).filter(function (f) { return f !== fn; });
    return this;
  };

  Player.prototype.emit = function (name, detail) {
    (this._handlers[name] || []).slice().forEach(function (fn) {
      // One extension's bug must not stop the player (or the other extensions).
      try { fn(detail || {}); } catch (err) { if (window.console) console.error(err); }
    });
  };

  Player.prototype.cellOf = function (taskId) {
    return this.cells.filter(function (c) { return c.data.task_id === taskId; })[0] || null;
  };

  Player.prototype.build = function () {
    var self = this;
    var data = this.data;
    this.root.innerHTML = "";
    this.root.classList.add("cp-root");
    this.root.setAttribute("tabindex", "0");
    var playable = data.cells.filter(function (c) { return c.proxy; });
    var allPortrait = playable.length > 0 && playable.every(function (c) { return c.height > c.width; });
    this.root.style.setProperty("--cp-aspect", allPortrait ? "9 / 16" : "16 / 9");

    // Controls
    this.playButton = el("button", {class: "cp-play", type: "button", title: "Play / pause all (space)",
      onclick: function () { self.toggle(); }, text: "▶ Play all"});
    this.scrubber = el("input", {class: "cp-scrub", type: "range", min: "0", max: "0", step: String(1 / this.fps),
      value: "0", "aria-label": "Position of every cell"});
    this.scrubber.addEventListener("input", function () { self.seek(parseFloat(self.scrubber.value)); });
    this.clock = el("span", {class: "cp-clock", text: "0.00 s · frame 0"});
    var back = el("button", {class: "cp-step-back", type: "button", title: "One frame back (←)", text: "◀|",
      onclick: function () { self.step(-1); }});
    var fwd = el("button", {class: "cp-step-fwd", type: "button", title: "One frame forward (→)", text: "|▶",
      onclick: function () { self.step(1); }});
    var loop = el("input", {type: "checkbox", class: "cp-loop"});
    loop.checked = true;
    loop.addEventListener("change", function () { self.loop = loop.checked; });
    var speed = el("select", {class: "cp-speed", "aria-label": "Speed"},
      SPEEDS.map(function (s) { var o = el("option", {value: String(s), text: s + "×"}); if (s === 1) o.selected = true; return o; }));
    speed.addEventListener("change", function () { self.setRate(parseFloat(speed.value)); });
    this.muteButton = el("button", {class: "cp-mute", type: "button", text: "Mute all",
      onclick: function () { self.hear(null); }});
    this.scrubTrack = el("div", {class: "cp-scrub-track"}, [this.scrubber]);
    var controls = [this.playButton, back, fwd, this.scrubTrack, this.clock,
      el("label", {class: "cp-opt"}, [loop, document.createTextNode(" loop")]), speed, this.muteButton];
    if (playable.length >= 2) {
      this.modeSelect = el("select", {class: "cp-mode", "aria-label": "A/B mode"}, [
        el("option", {value: "grid", text: "Side by side"}), el("option", {value: "wipe", text: "A/B wipe"}),
        el("option", {value: "flicker", text: "A/B flicker"})]);
      this.modeSelect.addEventListener("change", function () { self.setMode(self.modeSelect.value); });
      controls.push(this.modeSelect);
    }
    this.controls = el("div", {class: "cp-controls"}, controls);
    this.root.appendChild(this.controls);

    // A/B wipe slider, shown in wipe mode only
    this.wipe = el("input", {class: "cp-wipe", type: "range", min: "0", max: "100", step: "0.5", value: "50",
      "aria-label": "A/B split"});
    this.wipe.addEventListener("input", function () { self.applyWipe(); });
    this.flickerNote = el("span", {class: "cp-flicker-note"});
    // A/B works on any two takes of the set (a click on a matrix cell chooses its pair too).
    var pairOptions = function () {
      return playable.map(function (c, i) { return el("option", {value: String(i), text: String.fromCharCode(65 + data.cells.indexOf(c))}); });
    };
    this.pairA = el("select", {class: "cp-pair-a", "aria-label": "A/B: left / first take"}, pairOptions());
    this.pairB = el("select", {class: "cp-pair-b", "aria-label": "A/B: right / second take"}, pairOptions());
    this.pairB.value = "1";
    this.pairA.addEventListener("change", function () { self.applyPair(); });
    this.pairB.addEventListener("change", function () { self.applyPair(); });
    this.flickerRate = el("select", {class: "cp-flicker-rate", "aria-label": "Flicker: time on each take"},
      [250, 400, 600, 1000, 1500].map(function (ms) {
        var o = el("option", {value: String(ms), text: "every " + (ms / 1000) + " s"}); if (ms === 600) o.selected = true; return o;
      }));
    this.flickerRate.addEventListener("change", function () { if (self.mode === "flicker") self.setMode("flicker"); });
    this.root.appendChild(el("div", {class: "cp-ab-bar"}, [this.pairA, el("span", {class: "cp-ab-arrow", text: "◀"}), this.wipe,
      el("span", {class: "cp-ab-arrow", text: "▶"}), this.pairB, this.flickerRate, this.flickerNote]));

    // Cells
    this.grid = el("div", {class: "cp-grid cp-n" + Math.min(data.cells.length, 12)});
    data.cells.forEach(function (cell, index) { self.cells.push(self.buildCell(cell, index)); });
    this.aside = el("aside", {class: "cp-aside"});
    this.root.appendChild(el("div", {class: "cp-stage"}, [this.grid, this.aside]));
    if (data.problems && data.problems.length) {
      this.root.appendChild(el("ul", {class: "cp-problems"}, data.problems.map(function (p) { return el("li", {text: p}); })));
    }
    this.simBox = el("div", {class: "cp-sim"});
    this.root.appendChild(this.simBox);
    this.renderSimilarity();

    this._keys = function (event) { self.onKey(event); };
    document.addEventListener("keydown", this._keys);
  };

  Player.prototype.buildCell = function (cell, index) {
    var self = this;
    var letter = String.fromCharCode(65 + index);
    var media = el("div", {class: "cp-media"});
    var entry = {data: cell, video: null, frame: -1, duration: 0, node: null, letter: letter,
      offset: (cell.offset_frames || 0) / this.fps};
    if (cell.proxy) {
      var video = el("video", {src: cell.proxy, preload: "auto", playsinline: "", muted: "",
        "data-task": cell.task_id});
      video.muted = true;
      video.addEventListener("loadedmetadata", function () {
        entry.duration = video.duration || 0;
        self.updateRange();
      });
      video.addEventListener("ended", function () { if (entry === self.leader()) self.onLeaderEnded(); });
      if (video.requestVideoFrameCallback) {
        var onFrame = function (now, meta) {
          entry.frame = Math.floor(meta.mediaTime * self.fps + 1e-3);
          entry.mediaTime = meta.mediaTime;
          if (!self.playing) self.paint();
          video.requestVideoFrameCallback(onFrame);
        };
        video.requestVideoFrameCallback(onFrame);
      }
      entry.video = video;
      media.appendChild(video);
    } else {
      media.appendChild(el("div", {class: "cp-missing", text: cell.problem || "no video"}));
    }
    media.appendChild(el("span", {class: "cp-letter", text: letter}));

    var buttons = el("div", {class: "cp-cell-buttons"});
    if (cell.proxy) {
      buttons.appendChild(el("button", {type: "button", class: "cp-hear", title: "Hear this cell only (the others muted)", text: "♪",
        onclick: function () { self.hear(self.heard === entry ? null : entry); }}));
    }
    buttons.appendChild(el("button", {type: "button", class: "cp-enlarge", title: "Enlarge / shrink", text: "⤢",
      onclick: function () { self.enlarge(entry); }}));
    if (cell.original) {
      buttons.appendChild(el("a", {class: "cp-original", href: cell.original, target: "_blank", rel: "noopener",
        title: "The original video", text: "original"}));
    }

    var head = el("div", {class: "cp-head"}, [el("strong", {class: "cp-label", text: letter + " · " + cell.label}), buttons]);
    var fields = el("div", {class: "cp-fields"});
    var differs = cell.differs || [];
    FIELD_ORDER.forEach(function (name) {
      if (!cell.fields || !(name in cell.fields)) return;
      var diff = differs.indexOf(name) >= 0;
      // Text-to-video runs have no reference image: say so only when it is a difference.
      if (name === "image" && cell.fields.image === "no image" && !diff) return;
      fields.appendChild(el("span", {class: "cp-field" + (diff ? " cp-diff" : ""), "data-field": name,
        title: (cell.field_names && cell.field_names[name] || name) + (diff ? " (differs between cells)" : ""),
        text: cell.fields[name]}));
    });
    var prompt = el("div", {class: "cp-prompt" + (differs.indexOf("prompt") >= 0 ? " cp-diff" : ""), "data-field": "prompt",
      title: cell.fields ? cell.fields.prompt : "", text: cell.fields ? cell.fields.prompt : ""});
    var extra = [];
    if (cell.fields && (differs.indexOf("negative_prompt") >= 0 || (cell.fields.negative_prompt && cell.fields.negative_prompt !== "none"))) {
      extra.push(el("div", {class: "cp-neg" + (differs.indexOf("negative_prompt") >= 0 ? " cp-diff" : ""),
        "data-field": "negative_prompt", text: "negative: " + cell.fields.negative_prompt}));
    }
    var review = el("div", {class: "cp-review"});
    var slot = el("div", {class: "cp-slot"});
    var node = el("div", {class: "cp-cell", "data-task": cell.task_id}, [media, head, slot, fields, prompt].concat(extra, [review]));
    entry.node = node;
    entry.media = media;
    entry.slot = slot;
    entry.review = review;
    this.renderReview(entry);
    this.grid.appendChild(node);
    return entry;
  };

  Player.prototype.renderReview = function (entry) {
    var c = entry.data;
    entry.review.innerHTML = "";
    if (c.rating === 1) entry.review.appendChild(el("span", {class: "cp-rating", text: "👍 thumbs up"}));
    if (c.rating === -1) entry.review.appendChild(el("span", {class: "cp-rating", text: "👎 thumbs down"}));
    if (c.picked) entry.review.appendChild(el("span", {class: "cp-picked", text: "★ picked"}));
    if (c.note) entry.review.appendChild(el("span", {class: "cp-note", text: c.note}));
    entry.node.classList.toggle("cp-is-picked", !!c.picked);
  };

  Player.prototype.playable = function () { return this.cells.filter(function (c) { return c.video; }); };

  Player.prototype.leader = function () {
    var best = null;
    this.playable().forEach(function (c) { if (!best || c.duration > best.duration) best = c; });
    return best;
  };

  Player.prototype.duration = function () { var l = this.leader(); return l ? l.duration : 0; };

  /* The shared clock: the leader's time less its own offset. */
  Player.prototype.time = function () { var l = this.leader(); return l ? l.video.currentTime - l.offset : 0; };

  /* Where a cell should be at clock t: its offset applied, kept inside the take. */
  Player.prototype.target = function (c, t) {
    return Math.max(0, Math.min(t + (c.offset || 0), Math.max(0, (c.duration || t) - 0.5 / this.fps)));
  };

  /* Whether a cell has a frame to show at clock t (its offset may put it before its start or past its end). */
  Player.prototype.inside = function (c, t) {
    var at = t + (c.offset || 0);
    return at >= 0 && !(c.duration && at >= c.duration);
  };

  Player.prototype.setOffset = function (c, frames) {
    c.offset = frames / this.fps;
    c.data.offset_frames = frames;
    if (!this.playing) this.seek(this.time());
  };

  Player.prototype.updateRange = function () {
    this.scrubber.max = String(this.duration());
    this.paint();
  };

  Player.prototype.paint = function () {
    var t = this.time();
    if (document.activeElement !== this.scrubber || this.playing) this.scrubber.value = String(t);
    var leader = this.leader();
    var frame = leader && leader.frame >= 0 && !this.playing ? leader.frame : Math.floor(t * this.fps + 1e-3);
    this.clock.textContent = fmt(t) + " / " + fmt(this.duration()) + " · frame " + frame;
    this.playButton.textContent = this.playing ? "❚❚ Pause all" : "▶ Play all";
    this.emit("time", {t: t});
  };

  Player.prototype.play = function () {
    var self = this;
    var cells = this.playable();
    if (!cells.length) return Promise.resolve();
    var t = this.time();
    if (t >= this.duration() - 0.5 / this.fps) t = 0;
    this.playing = true;
    cells.forEach(function (c) {
      c.video.playbackRate = self.rate;
      var at = self.target(c, t);
      if (Math.abs(c.video.currentTime - at) > 0.5 / self.fps) c.video.currentTime = at;
    });
    var started = cells.map(function (c) {
      if (c !== self.leader() && !self.inside(c, t)) return Promise.resolve();
      var p = c.video.play();
      return p && p.catch ? p.catch(function () {}) : Promise.resolve();
    });
    this.tick();
    this.paint();
    this.emit("play");
    return Promise.all(started);
  };

  Player.prototype.pause = function () {
    this.playing = false;
    if (this._raf) cancelAnimationFrame(this._raf);
    this._raf = null;
    this.playable().forEach(function (c) { c.video.pause(); });
    // Followers stop a few ms apart: put them on the leader's frame.
    var t = this.time();
    this.playable().forEach(function (c) { if (c !== this.leader()) c.video.currentTime = this.target(c, t); }, this);
    this.paint();
    this.emit("pause");
  };

  Player.prototype.toggle = function () { if (this.playing) this.pause(); else this.play(); };

  /* Small drift is steered by playback rate; only a large one seeks. A seek stalls a cell while it
   * decodes from the last keyframe, and on a busy machine it lands behind again: seeking at every
   * frame of drift kept 12 cells up to 80 frames apart, where plain play() stayed within 2
   * (bench/bench_playback.py). */
  var SEEK_DRIFT_S = 0.25;
  var STEER_WITHIN_S = 0.5;  // a drift is steered away over about this long
  var MAX_STEER = 0.1;       // at most 10 % faster or slower than the chosen speed

  Player.prototype.tick = function () {
    var self = this;
    if (!this.playing) return;
    var leader = this.leader();
    var t = this.time();
    this.playable().forEach(function (c) {
      if (c === leader) return;
      if (!self.inside(c, t)) {
        // Before its offset start it holds its first frame; past its end (a shorter take) it waits there.
        if (!c.video.paused) c.video.pause();
        if (t + c.offset < 0 && c.video.currentTime > 0.5 / self.fps) c.video.currentTime = 0;
        return;
      }
      // A follower a hair ahead ends first: play() would restart it from 0; it waits for the loop.
      if (c.video.ended) return;
      if (c.video.paused && !leader.video.paused) c.video.play().catch(function () {});
      if (c.video.seeking) return;
      var drift = c.video.currentTime - (t + c.offset);
      var rate = self.rate;
      if (Math.abs(drift) > SEEK_DRIFT_S) {
        c.video.currentTime = self.target(c, t);
        self.realigned += 1;
      } else if (Math.abs(drift) > 0.5 / self.fps) {
        rate = self.rate * (1 - Math.max(-MAX_STEER, Math.min(MAX_STEER, drift / STEER_WITHIN_S)));
      }
      if (Math.abs(c.video.playbackRate - rate) > 0.005) c.video.playbackRate = rate;
    });
    this.paint();
    this._raf = requestAnimationFrame(function () { self.tick(); });
  };

  Player.prototype.onLeaderEnded = function () {
    if (this.loop && this.playing) {
      this.playable().forEach(function (c) { c.video.currentTime = this.target(c, 0); }, this);
      this.play();
    } else {
      this.pause();
    }
  };

  Player.prototype.seek = function (t) {
    var self = this;
    t = Math.max(0, Math.min(t, this.duration()));
    this.playable().forEach(function (c) { c.video.currentTime = self.target(c, t); });
    this.paint();
    this.emit("seek", {t: t});
  };

  Player.prototype.lastFrame = function () { return Math.max(0, Math.round(this.duration() * this.fps) - 1); };

  Player.prototype.step = function (direction) {
    if (this.playing) this.pause();
    var leader = this.leader();
    if (!leader) return;
    var current = Math.floor(this.time() * this.fps + 1e-3);
    var target = Math.max(0, Math.min(this.lastFrame(), current + direction));
    this.seek((target + 0.5) / this.fps);
  };

  Player.prototype.setRate = function (rate) {
    this.rate = rate;
    this.playable().forEach(function (c) { c.video.playbackRate = rate; });
  };

  Player.prototype.hear = function (entry) {
    this.heard = entry;
    this.playable().forEach(function (c) {
      c.video.muted = c !== entry;
      c.node.classList.toggle("cp-heard", c === entry);
    });
    this.muteButton.classList.toggle("cp-active", entry === null);
  };

  Player.prototype.enlarge = function (entry) {
    var on = !entry.node.classList.contains("cp-big");
    this.cells.forEach(function (c) { c.node.classList.remove("cp-big"); });
    if (on) entry.node.classList.add("cp-big");
    this.emit("enlarge", {entry: entry, on: on});
  };

  Player.prototype.setMode = function (mode) {
    var self = this;
    this.mode = mode;
    this.root.classList.toggle("cp-mode-wipe", mode === "wipe");
    this.root.classList.toggle("cp-mode-flicker", mode === "flicker");
    this.root.classList.toggle("cp-mode-ab", mode !== "grid");
    if (this._flicker) clearInterval(this._flicker);
    this._flicker = null;
    var pair = this.pair();
    this.playable().forEach(function (c) {
      c.node.classList.remove("cp-hidden", "cp-ab-a", "cp-ab-b", "cp-ab-off");
      c.video.style.clipPath = "";
      if (mode !== "grid" && pair) c.node.classList.add(c === pair[0] ? "cp-ab-a" : c === pair[1] ? "cp-ab-b" : "cp-ab-off");
    });
    this.emit("mode", {mode: mode});
    if (!pair) return;
    if (mode === "wipe") this.applyWipe();
    if (mode === "flicker") {
      var showB = false;
      var flip = function () {
        showB = !showB;
        pair[1].node.classList.toggle("cp-hidden", !showB);
        self.flickerNote.textContent = "showing " + (showB ? pair[1].letter : pair[0].letter);
      };
      flip();
      this._flicker = setInterval(flip, parseInt(this.flickerRate.value, 10) || 600);
    }
  };

  /* The two takes A/B shows (chosen in its bar, or by a click on a matrix cell). */
  Player.prototype.pair = function () {
    var playable = this.playable();
    if (!this.pairA || playable.length < 2) return null;
    var a = playable[+this.pairA.value] || playable[0], b = playable[+this.pairB.value] || playable[1];
    if (a === b) b = playable.filter(function (c) { return c !== a; })[0];
    return [a, b];
  };

  Player.prototype.applyPair = function () { if (this.mode !== "grid") this.setMode(this.mode); };

  Player.prototype.setPair = function (a, b) {
    var playable = this.playable();
    if (!this.pairA || playable.indexOf(a) < 0 || playable.indexOf(b) < 0 || a === b) return;
    this.pairA.value = String(playable.indexOf(a));
    this.pairB.value = String(playable.indexOf(b));
    if (this.mode === "grid") {
      this.modeSelect.value = "wipe";
      this.setMode("wipe");
    } else {
      this.applyPair();
    }
  };

  Player.prototype.applyWipe = function () {
    var pair = this.pair();
    if (pair && this.mode === "wipe") pair[1].video.style.clipPath = "inset(0 0 0 " + this.wipe.value + "%)";
  };

  /* Whether a keydown is this player's: it is on the page and shown, and nobody is typing. */
  Player.prototype.ownsKey = function (event) {
    if (!this.root.isConnected || !this.root.offsetParent) return false;
    if (event.ctrlKey || event.metaKey || event.altKey) return false;
    var target = event.target;
    var typing = target && (target.tagName === "TEXTAREA" || target.tagName === "SELECT" ||
      (target.tagName === "INPUT" && target.type !== "range" && target.type !== "checkbox"));
    if (typing) return false;
    if (target && target.tagName === "INPUT" && target.type === "range" && !this.root.contains(target)) return false;
    return true;
  };

  Player.prototype.onKey = function (event) {
    if (!this.ownsKey(event)) return;
    var target = event.target;
    if (event.key === "ArrowLeft" || event.key === "ArrowRight") {
      event.preventDefault();
      this.step(event.key === "ArrowLeft" ? -1 : 1);
    } else if (event.key === " " && this.root.contains(target)) {
      event.preventDefault();
      this.toggle();
    }
  };

  Player.prototype.renderSimilarity = function () {
    var self = this;
    var box = this.simBox;
    box.innerHTML = "";
    var sims = this.data.similarity || [];
    var cells = this.cells;
    // Plain words for a stakeholder; the measure's name (SSIM, on the playback copies) in the tooltip.
    box.appendChild(el("h4", {text: "How alike the takes look (1.00 = identical)",
      title: "Structural similarity (SSIM) of the playback copies, frame by frame"}));
    if (this.data.similarity_note) box.appendChild(el("p", {class: "cp-sim-note", text: this.data.similarity_note}));
    if (!sims.length) return;
    var byPair = {};
    sims.forEach(function (s) { byPair[s.a + "|" + s.b] = s; byPair[s.b + "|" + s.a] = s; });
    var ids = cells.filter(function (c) { return c.video; });
    var head = el("tr", {}, [el("th", {text: ""})].concat(ids.map(function (c) { return el("th", {text: c.letter, title: c.data.label}); })));
    var rows = ids.map(function (row) {
      return el("tr", {}, [el("th", {text: row.letter + " · " + row.data.label, title: row.data.label})].concat(ids.map(function (col) {
        if (row === col) return el("td", {class: "cp-self", text: "—"});
        var s = byPair[row.data.task_id + "|" + col.data.task_id];
        if (!s) return el("td", {class: "cp-pending", text: "…"});
        var td = el("td", {class: "cp-heat", title: "mean " + s.ssim_mean.toFixed(4) + ", min " + s.ssim_min.toFixed(4),
          text: s.ssim_mean.toFixed(3), onclick: function () {
            // That pair in A/B (wipe, or the mode already on) and its row in the chart.
            self.row = row; self.renderTimeline(byPair, ids); self.setPair(row, col);
            if (self.root.scrollIntoView && self.root.getBoundingClientRect().top < 0) self.controls.scrollIntoView({block: "start"});
          }});
        td.style.background = heat(s.ssim_mean);
        return td;
      })));
    });
    // Many cells on a narrow screen: the matrix scrolls sideways in its own box, not the page.
    box.appendChild(el("div", {class: "cp-matrix-wrap"},
      [el("table", {class: "cp-matrix"}, [el("thead", {}, [head]), el("tbody", {}, rows)])]));
    this.timelineBox = el("div", {class: "cp-timeline"});
    box.appendChild(this.timelineBox);
    if (!this.row) this.row = ids[0];
    this.renderTimeline(byPair, ids);
    // The chart is drawn at the width it is shown (its text stays 11 px): drawn again when that changes.
    if (this._resize) this._resize.disconnect();
    if (window.ResizeObserver) {
      var drawn = this.timelineBox.clientWidth;
      this._resize = new ResizeObserver(function () {
        var now = self.timelineBox.clientWidth;
        if (now && Math.abs(now - drawn) > 8) { drawn = now; self.renderTimeline(byPair, ids); }
      });
      this._resize.observe(this.timelineBox);
    }
  };

  Player.prototype.renderTimeline = function (byPair, ids) {
    var box = this.timelineBox;
    if (!box || !this.row) return;
    box.innerHTML = "";
    var row = this.row;
    var series = ids.filter(function (c) { return c !== row; }).map(function (c) {
      return {cell: c, sim: byPair[row.data.task_id + "|" + c.data.task_id]};
    }).filter(function (s) { return s.sim; });
    var seconds = 1;
    var low = 1;
    series.forEach(function (s) {
      seconds = Math.max(seconds, s.sim.timeline.length);
      s.sim.timeline.forEach(function (v) { low = Math.min(low, v); });
    });
    low = Math.max(0, Math.floor(low * 10) / 10 - 0.1);
    // One unit of the drawing is one pixel on screen: a fixed 560-unit drawing shrunk into a phone's
    // column made its labels 6 px tall.
    var W = Math.max(280, Math.min(640, box.clientWidth || 560)), H = 180, L = 40, B = 24, T = 10, R = 28;
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 " + W + " " + H);
    svg.setAttribute("class", "cp-plot");
    function x(i) { return L + (seconds > 1 ? i / (seconds - 1) : 0.5) * (W - L - R); }
    function y(v) { return T + (1 - (v - low) / (1 - low || 1)) * (H - T - B); }
    function line(x1, y1, x2, y2, cls) {
      var l = document.createElementNS(ns, "line");
      l.setAttribute("x1", x1); l.setAttribute("y1", y1); l.setAttribute("x2", x2); l.setAttribute("y2", y2);
      l.setAttribute("class", cls); svg.appendChild(l);
    }
    function text(tx, ty, value, anchor) {
      var t = document.createElementNS(ns, "text");
      t.setAttribute("x", tx); t.setAttribute("y", ty); t.setAttribute("text-anchor", anchor || "middle");
      t.textContent = value; svg.appendChild(t);
    }
    [low, (low + 1) / 2, 1].forEach(function (v) { line(L, y(v), W - R, y(v), "cp-grid-line"); text(L - 4, y(v) + 4, v.toFixed(2), "end"); });
    // A label every second where there is room (about 44 px each), else every 2nd, 3rd, ... second.
    var every = Math.max(1, Math.ceil(44 * seconds / (W - L - R)));
    for (var i = 0; i < seconds; i += every) text(x(i), H - 6, i + "–" + (i + 1) + " s");
    var hues = [210, 20, 130, 280, 50, 340, 180, 90, 0, 250, 160];
    var legend = el("div", {class: "cp-legend"});
    series.forEach(function (s, k) {
      var p = document.createElementNS(ns, "polyline");
      p.setAttribute("points", s.sim.timeline.map(function (v, i) { return x(i) + "," + y(v); }).join(" "));
      p.setAttribute("class", "cp-series");
      p.setAttribute("stroke", "hsl(" + hues[k % hues.length] + ", 70%, 45%)");
      svg.appendChild(p);
      var swatch = el("span", {class: "cp-swatch"});
      swatch.style.background = "hsl(" + hues[k % hues.length] + ", 70%, 45%)";
      legend.appendChild(el("span", {class: "cp-legend-item"}, [swatch, document.createTextNode(row.letter + " vs " + s.cell.letter + " (" + s.cell.data.label + ")")]));
    });
    box.appendChild(el("div", {class: "cp-timeline-title", title: "SSIM per second", text: "Likeness per second: " + row.letter + " · " + row.data.label + " against the others (click a matrix row to change)"}));
    box.appendChild(svg);
    box.appendChild(legend);
  };

  /* Update reviews and similarity in place; a different set of runs rebuilds the player. */
  Player.prototype.update = function (data) {
    var same = data.cells.length === this.data.cells.length && data.cells.every(function (c, i) {
      return c.task_id === this.data.cells[i].task_id && c.proxy === this.data.cells[i].proxy;
    }, this);
    if (!same) return false;
    this.data = data;
    this.cells.forEach(function (entry, i) { entry.data = data.cells[i]; this.renderReview(entry); }, this);
    this.renderSimilarity();
    this.emit("update", {data: data});
    return true;
  };

  Player.prototype.destroy = function () {
    this.pause();
    this.emit("destroy");
    if (this._flicker) clearInterval(this._flicker);
    if (this._resize) this._resize.disconnect();
    document.removeEventListener("keydown", this._keys);
  };

  /* For tests and the app: where every cell is now. */
  Player.prototype.state = function () {
    return {
      playing: this.playing,
      leader: this.leader() ? this.leader().data.task_id : null,
      realigned: this.realigned,
      cells: this.playable().map(function (c) {
        return {task_id: c.data.task_id, time: c.video.currentTime, frame: c.frame, paused: c.video.paused,
                muted: c.video.muted, ready: c.video.readyState, duration: c.duration,
                offset_frames: Math.round((c.offset || 0) * this.fps)};
      }, this)
    };
  };

  var mounted = [];

  window.ComparePlayer = {
    /* The DOM helper the extensions share: el(tag, {class, text, onclick, attr...}, [children or strings]). */
    el: el,
    mount: function (root, data) {
      if (root.comparePlayer && root.comparePlayer.update(data)) return root.comparePlayer;
      if (root.comparePlayer) {
        root.comparePlayer.destroy();
        mounted = mounted.filter(function (p) { return p !== root.comparePlayer; });
      }
      var player = new Player(root, data);
      root.comparePlayer = player;
      mounted.push(player);
      EXTENSIONS.forEach(function (fn) { try { fn(player); } catch (err) { if (window.console) console.error(err); } });
      return player;
    },
    /* fn(player) runs for every player mounted from now on and for those already mounted. */
    extend: function (fn) {
      EXTENSIONS.push(fn);
      mounted.forEach(function (player) { try { fn(player); } catch (err) { if (window.console) console.error(err); } });
    }
  };
})();
