/* Veo Prompt Lab: review on the comparison player (comments pinned to a moment, drawings, a status per take).
 *
 * An extension of compare_player.js (ComparePlayer.extend), served with the app and inlined into the
 * report. It reads data.review:
 *   {mode: "lab" | "report", report_id, takes: {task_id: {status, status_history, comments}}}
 * In the lab every change goes to ComparePlayer.reviewSink(action) (the tab sends it to the journal and
 * answers with new data). In the report there is no server: changes are kept in localStorage under
 * "veo-lab-review:<report id>" and "Export review" downloads review-<report id>-<name>.json
 * (docs/review-format.md). Shapes are stored in 0-1 coordinates of the video frame, drawn over the
 * frame's own rectangle (object-fit: contain letterboxing taken out), so they land on the same pixel
 * at any size. Every text is set with textContent: a comment or a name never becomes markup.
 */
(function () {
  "use strict";

  var STATUSES = [["needs_review", "Needs review"], ["approved", "Approved"], ["changes_requested", "Changes requested"],
    ["rejected", "Rejected"]];
  var STATUS_NAME = {};
  STATUSES.forEach(function (s) { STATUS_NAME[s[0]] = s[1]; });
  var COLORS = ["#e03131", "#f5c400", "#2f9e44", "#1c7ed6", "#ffffff"];
  var TOOLS = [["arrow", "↗", "Arrow"], ["rect", "▭", "Box"], ["pen", "✎", "Freehand"]];
  var NAME_KEY = "veo-lab-reviewer";
  var NAME_MAX = 80, TEXT_MAX = 5000;
  var SVG = "http://www.w3.org/2000/svg";

  // The player's own DOM helper (the extensions run only once a player exists).
  function el(tag, attrs, children) { return window.ComparePlayer.el(tag, attrs, children); }

  function svg(tag, attrs) {
    var node = document.createElementNS(SVG, tag);
    for (var key in attrs) if (Object.prototype.hasOwnProperty.call(attrs, key)) node.setAttribute(key, attrs[key]);
    return node;
  }

  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var b = new Uint8Array(16);
    crypto.getRandomValues(b);
    b[6] = (b[6] & 15) | 64; b[8] = (b[8] & 63) | 128;
    var h = Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  function timecode(t) {
    var ms = Math.max(0, Math.round(t * 1000));
    var h = Math.floor(ms / 3600000), m = Math.floor(ms / 60000) % 60, s = Math.floor(ms / 1000) % 60;
    var pad = function (n, w) { n = String(n); while (n.length < w) n = "0" + n; return n; };
    return (h ? pad(h, 2) + ":" : "") + pad(m, 2) + ":" + pad(s, 2) + "." + pad(ms % 1000, 3);
  }

  /* Edits and deletions written here, over the comments as the data has them (the journal applied its own):
     a deletion is a tombstone, the latest edit by (at, id) gives the text; applying one twice changes nothing. */
  function applyChanges(comments, changes) {
    if (!changes.length) return comments;
    var gone = {}, latest = {};
    changes.forEach(function (e) {
      if (e.kind === "delete") gone[e.comment_id] = 1;
      else if (!latest[e.comment_id] || e.at > latest[e.comment_id].at || (e.at === latest[e.comment_id].at && e.id > latest[e.comment_id].id)) latest[e.comment_id] = e;
    });
    return comments.filter(function (c) { return !gone[c.id]; }).map(function (c) {
      var e = latest[c.id];
      if (!e || (c.edited_at && c.edited_at > e.at)) return c;
      var copy = {};
      for (var k in c) if (Object.prototype.hasOwnProperty.call(c, k)) copy[k] = c[k];
      copy.text = e.text; copy.edited_at = e.at;
      return copy;
    });
  }

  function storage() { try { return window.localStorage; } catch (e) { return null; } }

  function load(key, fallback) {
    var s = storage();
    if (!s) return fallback;
    try { var v = JSON.parse(s.getItem(key)); return v == null ? fallback : v; } catch (e) { return fallback; }
  }

  function save(key, value) { var s = storage(); if (s) try { s.setItem(key, JSON.stringify(value)); } catch (e) { /* full: kept in memory */ } }

  /* Where the video's picture is inside its box (object-fit: contain): {x, y, w, h} in CSS px of the box. */
  function frameRect(entry) {
    var box = entry.media, video = entry.video;
    var bw = box.clientWidth, bh = box.clientHeight;
    var vw = (video && video.videoWidth) || entry.data.width || 16, vh = (video && video.videoHeight) || entry.data.height || 9;
    var scale = Math.min(bw / vw, bh / vh);
    var w = vw * scale, h = vh * scale;
    return {x: (bw - w) / 2, y: (bh - h) / 2, w: w, h: h};
  }

  function Review(player) {
    var self = this;
    this.player = player;
    this.review = player.data.review;
    this.mode = this.review.mode === "report" ? "report" : "lab";
    this.storeKey = "veo-lab-review:" + (this.review.report_id || "lab");
    this.local = this.mode === "report" ? load(this.storeKey, {comments: [], status_events: []}) : {comments: [], status_events: []};
    this.local.comment_events = this.local.comment_events || [];  // (work kept before edits existed has none)
    this.editing = null;        // the id of the comment whose text is being edited
    this.pending = [];          // shapes being drawn for the next comment
    this.tool = "arrow";
    this.color = COLORS[0];
    this.target = null;         // the take the next comment is on (an entry)
    this.range = {in: null, out: null};
    this.shown = null;          // the comment whose drawing is shown
    this.build();
    player.on("time", function () { self.onTime(); });
    player.on("play", function () { self.shown = null; self.drawAll(); });
    player.on("update", function (e) { self.review = e.data.review || self.review; self.refresh(); });
    player.on("enlarge", function () { requestAnimationFrame(function () { self.drawAll(); }); });
    player.on("destroy", function () { self.destroy(); });
    this._keys = function (event) { self.onKey(event); };
    document.addEventListener("keydown", this._keys);
    if (window.ResizeObserver) {
      this._resize = new ResizeObserver(function () { self.drawAll(); self.renderMarkers(); });
      player.cells.forEach(function (c) { self._resize.observe(c.media); });
    }
    player.cells.forEach(function (c) {
      if (c.video) c.video.addEventListener("loadedmetadata", function () { self.drawAll(); self.renderMarkers(); self.applyLink(); });
    });
    this.refresh();
    this.applyLink();
  }

  Review.prototype.name = function () { return (this.nameInput.value || "").trim().slice(0, NAME_MAX); };

  /* ------------------------------------------------------------ data */

  Review.prototype.takeData = function (taskId) {
    return (this.review.takes && this.review.takes[taskId]) || {status: "needs_review", status_history: [], comments: []};
  };

  Review.prototype.comments = function () {
    var seen = {}, all = [];
    var self = this;
    this.player.cells.forEach(function (entry) {
      self.takeData(entry.data.task_id).comments.forEach(function (c) { if (!seen[c.id]) { seen[c.id] = 1; all.push(c); } });
    });
    this.local.comments.forEach(function (c) { if (!seen[c.id] && self.player.cellOf(c.task_id)) { seen[c.id] = 1; all.push(c); } });
    all = applyChanges(all, this.local.comment_events);
    return all.sort(function (a, b) { return a.t_in - b.t_in || a.created_at - b.created_at || (a.id < b.id ? -1 : 1); });
  };

  Review.prototype.events = function (taskId) {
    var events = this.takeData(taskId).status_history.slice();
    var ids = {};
    events.forEach(function (e) { ids[e.id] = 1; });
    this.local.status_events.forEach(function (e) { if (e.task_id === taskId && !ids[e.id]) events.push(e); });
    return events.sort(function (a, b) { return a.at - b.at || (a.id < b.id ? -1 : 1); });
  };

  Review.prototype.status = function (taskId) {
    var events = this.events(taskId);
    return events.length ? events[events.length - 1].to : "needs_review";
  };

  /* ------------------------------------------------------------ layout */

  Review.prototype.build = function () {
    var self = this, player = this.player;
    player.root.classList.add("cr-on");
    player.aside.parentNode.classList.add("cp-has-aside");
    this.nameInput = el("input", {class: "cr-name", type: "text", maxlength: String(NAME_MAX), placeholder: "Your name",
      "aria-label": "Your name (shown on your comments)", value: load(NAME_KEY, "") || ""});
    this.nameInput.addEventListener("change", function () { save(NAME_KEY, self.name()); self.renderList(); });
    this.takeSelect = el("select", {class: "cr-take", "aria-label": "Take to comment on"},
      player.cells.filter(function (c) { return c.video; }).map(function (c) {
        return el("option", {value: c.data.task_id, text: c.letter + " · " + c.data.label});
      }));
    this.takeSelect.addEventListener("change", function () { self.setTarget(player.cellOf(self.takeSelect.value)); });
    this.at = el("span", {class: "cr-at", text: "00:00.000"});
    this.inButton = el("button", {type: "button", class: "cr-in", title: "Start of the range: now (key I)", text: "In",
      onclick: function () { self.mark("in"); }});
    this.outButton = el("button", {type: "button", class: "cr-out", title: "End of the range: now (key O)", text: "Out",
      onclick: function () { self.mark("out"); }});
    this.clearRange = el("button", {type: "button", class: "cr-clear-range", title: "Comment on one moment, not a range",
      text: "×", onclick: function () { self.range = {in: null, out: null}; self.renderComposer(); }});
    var tools = el("span", {class: "cr-tools", role: "group", "aria-label": "Drawing tool"});
    this.toolButtons = TOOLS.map(function (t) {
      var b = el("button", {type: "button", class: "cr-tool", "data-tool": t[0], title: t[2] + " (draw on the paused frame)",
        text: t[1], onclick: function () { self.tool = t[0]; self.renderComposer(); }});
      tools.appendChild(b);
      return b;
    });
    var swatches = el("span", {class: "cr-colors", role: "group", "aria-label": "Colour"});
    this.colorButtons = COLORS.map(function (c) {
      var b = el("button", {type: "button", class: "cr-color", "data-color": c, title: c, "aria-label": "colour " + c,
        onclick: function () { self.color = c; self.renderComposer(); }});
      b.style.background = c;
      swatches.appendChild(b);
      return b;
    });
    this.undo = el("button", {type: "button", class: "cr-undo", title: "Remove the last shape", text: "Undo",
      onclick: function () { self.pending.pop(); self.renderComposer(); self.drawAll(); }});
    this.text = el("textarea", {class: "cr-text", rows: "2", maxlength: String(TEXT_MAX), placeholder: "Comment at this moment…",
      "aria-label": "Comment"});
    this.post = el("button", {type: "button", class: "cr-post", text: "Comment", onclick: function () { self.submit(); }});
    this.say = el("div", {class: "cr-say", role: "status"});
    this.list = el("ol", {class: "cr-list", "aria-label": "Comments by time"});
    var foot = el("div", {class: "cr-foot"});
    if (this.mode === "report") {
      foot.appendChild(el("button", {type: "button", class: "cr-export", text: "Export review",
        title: "Download your comments and statuses as a file to send back (review-<report>-<name>.json)",
        onclick: function () { self.exportFile(); }}));
      foot.appendChild(el("span", {class: "cr-hint", text: "Your review is kept in this browser until you export it."}));
    }
    player.aside.appendChild(el("div", {class: "cr-panel"}, [
      el("div", {class: "cr-row cr-who"}, [el("strong", {text: "Review"}), this.nameInput]),
      el("div", {class: "cr-composer"}, [
        el("div", {class: "cr-row"}, [this.takeSelect]),
        el("div", {class: "cr-row"}, [el("span", {class: "cr-at-label", text: "at"}), this.at, this.inButton, this.outButton, this.clearRange]),
        el("div", {class: "cr-row"}, [tools, swatches, this.undo]),
        this.text,
        el("div", {class: "cr-row"}, [this.post, this.say])]),
      this.list, foot]));

    // Per take: its status and its comment count beside the cell; its drawing layer over the frame.
    player.cells.forEach(function (entry) {
      if (!entry.video) return;
      var select = el("select", {class: "cr-status", "aria-label": "Status of " + entry.letter},
        STATUSES.map(function (s) { return el("option", {value: s[0], text: s[1]}); }));
      select.addEventListener("change", function () { self.setStatus(entry, select.value); });
      var count = el("button", {type: "button", class: "cr-count", title: "Comment on this take",
        onclick: function () { self.setTarget(entry); self.text.focus(); }});
      entry.crStatus = select;
      entry.crCount = count;
      var row = el("div", {class: "cr-cell"}, [select, count]);
      if (self.mode === "lab") {
        // The lab's own quick verdicts (kept in the journal's reviews, shown in History): on the take too.
        entry.crUp = el("button", {type: "button", class: "cr-up", title: "Thumbs up", "aria-label": "Thumbs up " + entry.letter,
          text: "👍", onclick: function () { self.sink("rating", {task_id: entry.data.task_id, rating: entry.data.rating === 1 ? null : 1}); }});
        entry.crDown = el("button", {type: "button", class: "cr-down", title: "Thumbs down", "aria-label": "Thumbs down " + entry.letter,
          text: "👎", onclick: function () { self.sink("rating", {task_id: entry.data.task_id, rating: entry.data.rating === -1 ? null : -1}); }});
        entry.crPick = el("button", {type: "button", class: "cr-pick", title: "Pick this take (the one to keep)",
          text: "★ Pick", onclick: function () { self.sink("pick", {task_id: entry.data.task_id, picked: !entry.data.picked}); }});
        row.appendChild(el("span", {class: "cr-verdict"}, [entry.crUp, entry.crDown, entry.crPick]));
      }
      entry.slot.appendChild(row);
      entry.crBadge = el("span", {class: "cr-badge"});
      entry.media.appendChild(entry.crBadge);
      var layer = svg("svg", {class: "cr-layer"});
      entry.crLayer = layer;
      entry.media.appendChild(layer);
      self.bindDrawing(entry);
    });
    this.markers = el("div", {class: "cr-markers", "aria-hidden": "true"});
    player.scrubTrack.appendChild(this.markers);
    this.setTarget(player.cells.filter(function (c) { return c.video; })[0] || null);
  };

  Review.prototype.setTarget = function (entry) {
    this.target = entry;
    if (entry) this.takeSelect.value = entry.data.task_id;
    this.pending = [];
    this.player.cells.forEach(function (c) { c.node.classList.toggle("cr-target", c === entry); });
    this.renderComposer();
    this.drawAll();
  };

  Review.prototype.mark = function (which) {
    var t = Math.round(this.player.time() * 1000) / 1000;
    this.range[which] = t;
    if (this.range.in != null && this.range.out != null && this.range.out < this.range.in) {
      var x = this.range.in; this.range.in = this.range.out; this.range.out = x;
    }
    this.renderComposer();
  };

  Review.prototype.momentIn = function () { return this.range.in != null ? this.range.in : Math.round(this.player.time() * 1000) / 1000; };

  Review.prototype.renderComposer = function () {
    var self = this;
    var tIn = this.momentIn(), tOut = this.range.out;
    this.at.textContent = timecode(tIn) + (tOut != null ? " – " + timecode(tOut) : "");
    this.inButton.classList.toggle("cr-active", this.range.in != null);
    this.outButton.classList.toggle("cr-active", this.range.out != null);
    this.clearRange.hidden = this.range.in == null && this.range.out == null;
    this.toolButtons.forEach(function (b) { b.classList.toggle("cr-active", b.getAttribute("data-tool") === self.tool); });
    this.colorButtons.forEach(function (b) { b.classList.toggle("cr-active", b.getAttribute("data-color") === self.color); });
    this.undo.disabled = !this.pending.length;
  };

  Review.prototype.refresh = function () {
    var self = this;
    var counts = {};
    this.comments().forEach(function (c) { counts[c.task_id] = (counts[c.task_id] || 0) + 1; });
    this.player.cells.forEach(function (entry) {
      if (!entry.video) return;
      var status = self.status(entry.data.task_id);
      entry.crStatus.value = status;
      entry.crStatus.setAttribute("data-status", status);
      entry.crBadge.textContent = STATUS_NAME[status];
      entry.crBadge.setAttribute("data-status", status);
      var n = counts[entry.data.task_id] || 0;
      entry.crCount.textContent = "+ Comment" + (n ? " · " + n : "");
      if (entry.crUp) {
        entry.crUp.classList.toggle("cr-active", entry.data.rating === 1);
        entry.crDown.classList.toggle("cr-active", entry.data.rating === -1);
        entry.crPick.classList.toggle("cr-active", !!entry.data.picked);
        entry.crPick.textContent = entry.data.picked ? "★ Picked" : "★ Pick";
      }
      entry.crCount.setAttribute("aria-label", n + " comment" + (n === 1 ? "" : "s") + " on " + entry.letter + "; add one");
    });
    this.renderList();
    this.renderMarkers();
    this.drawAll();
  };

  var DAY = window.Intl ? new Intl.DateTimeFormat(undefined, {month: "short", day: "numeric"}) : null;

  /* The list is rebuilt whole (200 comments: a few ms); one listener on the list serves every item. */
  Review.prototype.renderList = function () {
    var self = this, list = this.list;
    var t0 = performance.now();
    var comments = this.comments();
    var letters = {};
    this.player.cells.forEach(function (c) { letters[c.data.task_id] = c.letter; });
    var shownId = this.shown && this.shown.id;
    var me = this.name();
    var frag = document.createDocumentFragment();
    this.byId = {};
    comments.forEach(function (c) {
      self.byId[c.id] = c;
      var created = new Date(c.created_at * 1000);
      var head = el("div", {class: "cr-item-head"}, [
        el("span", {class: "cr-take-letter", text: letters[c.task_id] || "?"}),
        el("span", {class: "cr-time", text: timecode(c.t_in) + (c.t_out != null ? " – " + timecode(c.t_out) : "")}),
        c.shapes && c.shapes.length ? el("span", {class: "cr-drawn", title: "Has a drawing", text: "✎"}) : null,
        el("span", {class: "cr-author", text: c.author}),
        el("time", {class: "cr-created", datetime: created.toISOString(),
          text: DAY ? DAY.format(created) : created.toDateString()})]);
      // Your own comments (by the name typed above) can be edited and deleted, as in Frame.io.
      var mine = me && c.author === me;
      var body = self.editing === c.id ? el("div", {class: "cr-editor"}, [
          el("textarea", {class: "cr-edit-text", maxlength: String(TEXT_MAX), "aria-label": "Edit your comment"}),
          el("div", {class: "cr-row"}, [el("button", {type: "button", class: "cr-save", text: "Save"}),
            el("button", {type: "button", class: "cr-cancel", text: "Cancel"})])])
        : c.text ? el("div", {class: "cr-body", text: c.text}) : null;
      if (self.editing === c.id) body.firstChild.value = c.text || "";
      frag.appendChild(el("li", {class: "cr-item" + (shownId === c.id ? " cr-shown" : ""), "data-id": c.id,
        "data-task": c.task_id, tabindex: "0"}, [head, body, el("div", {class: "cr-actions"}, [
          el("button", {type: "button", class: "cr-link", text: "Copy link to this moment"}),
          c.edited_at ? el("span", {class: "cr-edited", title: new Date(c.edited_at * 1000).toLocaleString(), text: "edited"}) : null,
          mine && self.editing !== c.id ? el("button", {type: "button", class: "cr-link cr-edit", text: "Edit"}) : null,
          mine ? el("button", {type: "button", class: "cr-link cr-delete", text: "Delete"}) : null])]));
    });
    list.textContent = "";
    if (!comments.length) list.appendChild(el("li", {class: "cr-empty", text: "No comments yet. Pause on a moment, draw if it helps, and write what you see."}));
    list.appendChild(frag);
    if (!this._listBound) {
      this._listBound = true;
      var pickItem = function (event) {
        var li = event.target.closest && event.target.closest(".cr-item");
        return li && self.byId[li.getAttribute("data-id")] ? {li: li, comment: self.byId[li.getAttribute("data-id")]} : null;
      };
      list.addEventListener("click", function (event) {
        var hit = pickItem(event);
        if (!hit) return;
        var cls = event.target.classList;
        if (cls.contains("cr-edit")) {
          self.editing = hit.comment.id;
          self.renderList();
          var box = list.querySelector(".cr-edit-text");
          if (box) box.focus();
        } else if (cls.contains("cr-delete")) {
          if (window.confirm("Delete this comment? Everyone who gets your review will see it gone.")) self.change(hit.comment, "delete");
        } else if (cls.contains("cr-cancel")) {
          self.editing = null;
          self.renderList();
        } else if (cls.contains("cr-save")) {
          self.change(hit.comment, "edit", hit.li.querySelector(".cr-edit-text").value);
        } else if (cls.contains("cr-link")) {
          self.copyLink(self.player.cellOf(hit.comment.task_id), hit.comment.t_in, event.target);
        } else if (!(event.target.closest && event.target.closest(".cr-editor"))) {
          self.show(hit.comment);
        }
      });
      list.addEventListener("keydown", function (event) {
        var hit = pickItem(event);
        if (hit && event.key === "Enter" && event.target === hit.li) self.show(hit.comment);
      });
      list.addEventListener("mouseover", function (event) {
        // The full date and time only when pointed at (formatting 200 of them up front cost more than a frame).
        var t = event.target.closest && event.target.closest(".cr-created");
        if (t && !t.title) t.title = new Date(t.getAttribute("datetime")).toLocaleString();
      });
    }
    this.lastRenderMs = performance.now() - t0;
  };

  Review.prototype.renderMarkers = function () {
    var self = this, duration = this.player.duration();
    this.markers.innerHTML = "";
    if (!duration) return;
    this.comments().forEach(function (c) {
      var entry = self.player.cellOf(c.task_id);
      var left = 100 * Math.min(1, c.t_in / duration);
      var mark = el("span", {class: "cr-marker" + (c.t_out != null ? " cr-marker-range" : ""),
        title: (entry ? entry.letter + " " : "") + timecode(c.t_in) + " " + c.author + ": " + (c.text || "(drawing)")});
      mark.style.left = left + "%";
      if (c.t_out != null) mark.style.width = Math.max(0.6, 100 * (c.t_out - c.t_in) / duration) + "%";
      self.markers.appendChild(mark);
    });
  };

  /* ------------------------------------------------------------ drawing */

  Review.prototype.bindDrawing = function (entry) {
    var self = this, layer = entry.crLayer, drawing = null;
    function point(event) {
      var r = layer.getBoundingClientRect();
      return [Math.max(0, Math.min(1, (event.clientX - r.left) / r.width)), Math.max(0, Math.min(1, (event.clientY - r.top) / r.height))];
    }
    layer.addEventListener("pointerdown", function (event) {
      if (event.button !== 0) return;
      if (self.target !== entry) self.setTarget(entry);
      if (self.player.playing) self.player.pause();
      self.shown = null;
      drawing = {kind: self.tool, color: self.color, points: [point(event), point(event)]};
      if (drawing.kind === "pen") drawing.points = [point(event)];
      self.pending.push(drawing);
      layer.setPointerCapture(event.pointerId);
      event.preventDefault();
      self.drawAll();
    });
    layer.addEventListener("pointermove", function (event) {
      if (!drawing) return;
      var p = point(event);
      if (drawing.kind === "pen") { if (drawing.points.length < 2000) drawing.points.push(p); }
      else drawing.points[1] = p;
      self.draw(entry);
    });
    var end = function () {
      if (!drawing) return;
      var p = drawing.points;
      // A click without a drag is not a shape.
      if (drawing.kind !== "pen" && Math.abs(p[0][0] - p[1][0]) + Math.abs(p[0][1] - p[1][1]) < 0.01) self.pending.pop();
      drawing = null;
      self.renderComposer();
      self.draw(entry);
    };
    layer.addEventListener("pointerup", end);
    layer.addEventListener("pointercancel", end);
  };

  Review.prototype.drawAll = function () { var self = this; this.player.cells.forEach(function (c) { if (c.crLayer) self.draw(c); }); };

  Review.prototype.draw = function (entry) {
    var layer = entry.crLayer, r = frameRect(entry);
    layer.style.left = r.x + "px"; layer.style.top = r.y + "px";
    layer.style.width = r.w + "px"; layer.style.height = r.h + "px";
    layer.setAttribute("viewBox", "0 0 " + r.w + " " + r.h);
    while (layer.firstChild) layer.removeChild(layer.firstChild);
    var shapes = [];
    if (this.shown && this.shown.task_id === entry.data.task_id) shapes = shapes.concat(this.shown.shapes || []);
    if (this.target === entry) shapes = shapes.concat(this.pending);
    var stroke = Math.max(2, r.w / 160);
    shapes.forEach(function (s) {
      var pts = s.points.map(function (p) { return [p[0] * r.w, p[1] * r.h]; });
      var common = {stroke: s.color, "stroke-width": stroke, fill: "none", "stroke-linecap": "round", "stroke-linejoin": "round",
        "data-kind": s.kind};
      if (s.kind === "pen") {
        common.points = pts.map(function (p) { return p[0] + "," + p[1]; }).join(" ");
        layer.appendChild(svg("polyline", common));
      } else if (s.kind === "rect") {
        common.x = Math.min(pts[0][0], pts[1][0]); common.y = Math.min(pts[0][1], pts[1][1]);
        common.width = Math.abs(pts[1][0] - pts[0][0]); common.height = Math.abs(pts[1][1] - pts[0][1]);
        layer.appendChild(svg("rect", common));
      } else {
        var a = pts[0], b = pts[1], ang = Math.atan2(b[1] - a[1], b[0] - a[0]), head = stroke * 4.5;
        common.x1 = a[0]; common.y1 = a[1]; common.x2 = b[0]; common.y2 = b[1];
        var g = svg("g", {"data-kind": "arrow", "data-tip": b[0] + "," + b[1]});
        g.appendChild(svg("line", common));
        g.appendChild(svg("polygon", {fill: s.color, points: [b, [b[0] - head * Math.cos(ang - 0.45), b[1] - head * Math.sin(ang - 0.45)],
          [b[0] - head * Math.cos(ang + 0.45), b[1] - head * Math.sin(ang + 0.45)]].map(function (p) { return p[0] + "," + p[1]; }).join(" ")}));
        layer.appendChild(g);
      }
    });
    layer.classList.toggle("cr-drawable", this.target === entry);
  };

  Review.prototype.onTime = function () {
    if (this.range.in == null) this.at.textContent = timecode(this.player.time()) + (this.range.out != null ? " – " + timecode(this.range.out) : "");
    // A shown drawing belongs to its moment: moving away (or playing) hides it.
    if (this.shown) {
      var t = this.player.time(), c = this.shown, frame = 1 / (this.player.fps || 24);
      var end = c.t_out != null ? c.t_out : c.t_in;
      if (t < c.t_in - frame || t > end + frame) { this.shown = null; this.drawAll(); this.markShown(); }
    }
  };

  Review.prototype.markShown = function () {
    var id = this.shown && this.shown.id;
    Array.prototype.forEach.call(this.list.children, function (li) { li.classList.toggle("cr-shown", !!id && li.getAttribute("data-id") === id); });
  };

  /* Seek every take to the comment (the start of its range) and show its drawing. */
  Review.prototype.show = function (comment) {
    var player = this.player, self = this;
    if (player.playing) player.pause();
    var entry = player.cellOf(comment.task_id);
    // Half a frame past the time: every decoder shows the frame the comment was written on.
    player.seek(comment.t_in);
    this.shown = comment;
    if (entry && this.target !== entry) { this.target = entry; this.takeSelect.value = comment.task_id; this.pending = []; }
    player.cells.forEach(function (c) { c.node.classList.toggle("cr-target", c === entry); });
    this.markShown();
    this.drawAll();
    if (entry && entry.node.scrollIntoView && !this.inView(entry.node)) entry.node.scrollIntoView({block: "nearest"});
    self.renderComposer();
  };

  Review.prototype.inView = function (node) {
    var r = node.getBoundingClientRect();
    return r.top >= 0 && r.bottom <= (window.innerHeight || 0);
  };

  /* ------------------------------------------------------------ writing */

  Review.prototype.needName = function () {
    if (this.name()) return false;
    this.say.textContent = "Type your name first (top of this panel): it goes on your comments.";
    this.nameInput.focus();
    return true;
  };

  Review.prototype.submit = function () {
    if (!this.target) return;
    if (this.needName()) return;
    var text = this.text.value.trim();
    if (!text && !this.pending.length) { this.say.textContent = "Write a comment or draw on the frame first."; return; }
    if (text.length > TEXT_MAX) { this.say.textContent = "A comment holds at most " + TEXT_MAX + " characters."; return; }
    save(NAME_KEY, this.name());
    var tIn = this.momentIn(), tOut = this.range.out;
    var comment = {id: uuid(), task_id: this.target.data.task_id, t_in: tIn, t_out: tOut != null && tOut > tIn ? tOut : null,
      text: text, author: this.name(), created_at: Date.now() / 1000,
      shapes: this.pending.map(function (s) { return {kind: s.kind, color: s.color, points: s.points.map(function (p) {
        return [Math.round(p[0] * 1e5) / 1e5, Math.round(p[1] * 1e5) / 1e5]; })}; })};
    this.write("comment", comment);
    this.text.value = "";
    this.pending = [];
    this.range = {in: null, out: null};
    this.shown = comment;
    this.say.textContent = "";
    this.renderComposer();
    this.refresh();
    this.markShown();
  };

  Review.prototype.setStatus = function (entry, to) {
    var from = this.status(entry.data.task_id);
    if (to === from) return;
    if (this.needName()) { entry.crStatus.value = from; return; }
    save(NAME_KEY, this.name());
    this.write("status", {id: uuid(), task_id: entry.data.task_id, from: from, to: to, author: this.name(), at: Date.now() / 1000});
    this.refresh();
  };

  /* An edit (new text) or a deletion of one's own comment: an event with its own id, never a rewrite. */
  Review.prototype.change = function (comment, kind, text) {
    if (this.needName()) return;
    text = (text || "").trim();
    if (kind === "edit") {
      if (!text) { this.say.textContent = "A comment needs its text: delete it instead."; return; }
      if (text.length > TEXT_MAX) { this.say.textContent = "A comment holds at most " + TEXT_MAX + " characters."; return; }
      if (text === comment.text) { this.editing = null; this.renderList(); return; }
    }
    this.write("comment_event", {id: uuid(), comment_id: comment.id, task_id: comment.task_id, kind: kind,
      text: kind === "edit" ? text : "", author: this.name(), at: Date.now() / 1000});
    this.editing = null;
    if (kind === "delete" && this.shown && this.shown.id === comment.id) this.shown = null;
    this.say.textContent = "";
    this.refresh();
  };

  Review.prototype.write = function (kind, item) {
    var key = {comment: "comments", status: "status_events", comment_event: "comment_events"}[kind];
    this.local[key].push(item);
    if (this.mode === "report") {
      save(this.storeKey, this.local);
    } else if (window.ComparePlayer.reviewSink) {
      // The journal answers with the whole review again (player "update"); until then it shows as written here.
      window.ComparePlayer.reviewSink({op: kind, item: item});
    }
  };

  Review.prototype.sink = function (op, item) {
    if (window.ComparePlayer.reviewSink) window.ComparePlayer.reviewSink({op: op, item: item});
  };

  /* ------------------------------------------------------------ export, links, keys */

  Review.prototype.exportFile = function () {
    if (this.needName()) return;
    var name = this.name();
    var data = {schema: "veo-lab-review", version: 1, report_id: this.review.report_id || null, reviewer: name,
      exported_at: Date.now() / 1000, comments: this.local.comments, status_events: this.local.status_events,
      comment_events: this.local.comment_events};
    var safe = name.replace(/[^A-Za-z0-9._-]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 40) || "reviewer";
    var blob = new Blob([JSON.stringify(data, null, 2)], {type: "application/json"});
    var a = el("a", {href: URL.createObjectURL(blob), download: "review-" + (this.review.report_id || "lab") + "-" + safe + ".json"});
    document.body.appendChild(a);
    a.click();
    setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
    this.say.textContent = "Exported " + data.comments.length + " comments, " + data.status_events.length +
      " status changes and " + data.comment_events.length + " edits or deletions: send the file back to whoever made this report.";
  };

  Review.prototype.linkFor = function (entry, t) {
    var base = location.href.split("#")[0];
    var extra = this.review.link_extra || "";
    return base + "#" + extra + "take=" + (entry ? entry.letter : "A") + "&t=" + t.toFixed(3);
  };

  Review.prototype.copyLink = function (entry, t, button) {
    var link = this.linkFor(entry, t);
    var done = function () { button.textContent = "Link copied"; setTimeout(function () { button.textContent = "Copy link to this moment"; }, 1500); };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(link).then(done, function () { window.prompt("Copy this link:", link); });
    } else {
      window.prompt("Copy this link:", link);
    }
  };

  /* #take=B&t=3.250 opens take B at 3.25 s (once the videos know their length). */
  Review.prototype.applyLink = function () {
    if (this._linked) return;
    var hash = (location.hash || "").replace(/^#/, "");
    if (hash.indexOf("t=") < 0) { this._linked = true; return; }
    var params = {};
    hash.split("&").forEach(function (part) { var kv = part.split("="); params[decodeURIComponent(kv[0])] = decodeURIComponent(kv[1] || ""); });
    var t = parseFloat(params.t);
    // Every take must know its length first: a seek clamps each to its own end.
    if (!isFinite(t) || this.player.playable().some(function (c) { return !c.duration; })) return;
    this._linked = true;
    var entry = this.player.cells.filter(function (c) { return c.letter === (params.take || "").toUpperCase() || c.data.task_id === params.take; })[0];
    this.player.seek(t);
    if (entry) {
      this.setTarget(entry);
      if (!entry.node.classList.contains("cp-big")) this.player.enlarge(entry);
      if (entry.node.scrollIntoView) entry.node.scrollIntoView({block: "nearest"});
    }
  };

  Review.prototype.onKey = function (event) {
    if (!this.player.ownsKey(event)) return;
    if (event.key === "i" || event.key === "I") { this.mark("in"); event.preventDefault(); }
    else if (event.key === "o" || event.key === "O") { this.mark("out"); event.preventDefault(); }
  };

  Review.prototype.destroy = function () {
    document.removeEventListener("keydown", this._keys);
    if (this._resize) this._resize.disconnect();
  };

  /* For tests and the bench: the comments as shown, and how long the list took to render. */
  Review.prototype.state = function () {
    var self = this;
    return {comments: this.comments(), local: this.local, renderMs: this.lastRenderMs,
      statuses: this.player.cells.filter(function (c) { return c.video; }).map(function (c) { return self.status(c.data.task_id); })};
  };

  function attach(player) { if (player.data && player.data.review) player.review = new Review(player); }

  if (window.ComparePlayer) window.ComparePlayer.extend(attach);
  else (window.ComparePlayerExtensions = window.ComparePlayerExtensions || []).push(attach);
})();
