// Session timeline player: plays a session's events against the clock, paged from the timeline API.
// Only one window of events (at most WINDOW_MAX) is held, and at most LIST_SPAN of them are in the DOM.
(function () {
  "use strict";
  var WINDOW_FETCH = 200, WINDOW_MAX = 600, LIST_BEFORE = 12, LIST_AFTER = 28, TICK_MS = 100;
  var IDLE_SKIP_MS = 4000;
  var LABELS = {
    navigation: "Page", click: "Click", rage_click: "Rage click", dead_click: "Dead click", error: "Error",
    scroll: "Scroll", form_submit: "Form", custom: "Event"
  };

  function fmt(ms) {
    var s = Math.max(0, Math.floor(ms / 1000)), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    var ss = ("0" + (s % 60)).slice(-2);
    return h ? h + ":" + ("0" + m).slice(-2) + ":" + ss : m + ":" + ss;
  }
  function el(tag, cls, text) {
    var n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined && text !== null) n.textContent = String(text);
    return n;
  }
  function describe(ev) {
    var where = ev.text || ev.sel || "";
    switch (ev.type) {
      case "navigation": return "Opened " + (ev.title || ev.url || "a page");
      case "click": return "Clicked " + (where || "the page") + (ev.x !== undefined ? " at " + ev.x + ", " + ev.y : "");
      case "rage_click": return "Rage click on " + (where || "the page");
      case "dead_click": return "Dead click on " + (where || "the page") + " (nothing happened)";
      case "error": return "JavaScript error: " + (ev.msg || "unknown");
      case "scroll": return "Scrolled" + (ev.depth !== undefined ? " to " + ev.depth + "%" : "");
      case "form_submit": return "Submitted a form" + (ev.sel ? " (" + ev.sel + ")" : "");
      case "custom": return "Custom event " + (ev.name || "");
      default: return ev.type;
    }
  }
  function pathOf(url) {
    if (!url) return "";
    try { return new URL(url).pathname; } catch (e) { return url; }
  }
  function lastAtOrBefore(list, t) {
    var lo = 0, hi = list.length - 1, ans = -1;
    while (lo <= hi) {
      var mid = (lo + hi) >> 1;
      if (list[mid].t <= t) { ans = mid; lo = mid + 1; } else { hi = mid - 1; }
    }
    return ans;
  }

  function Player(root) {
    var data = JSON.parse(root.querySelector(".player-data").textContent);
    var scope = root.closest("[data-session-root]") || document;
    var q = function (role) { return root.querySelector('[data-role="' + role + '"]'); };
    var qs = function (role) { return scope.querySelector('[data-role="' + role + '"]'); };
    var st = {
      t: Math.min(data.start || 0, data.durationMs), playing: false, speed: 1, duration: data.durationMs,
      win: data.firstWindow.events.slice(), next: data.firstWindow.next, prev: data.firstWindow.prev,
      loading: null, timer: null, last: 0, annotations: data.annotations.slice()
    };
    var markers = data.markers, navs = markers.filter(function (m) { return m.type === "navigation"; });
    var errors = markers.filter(function (m) { return m.type === "error"; });
    var scrubber = q("scrubber"), playBtn = root.querySelector('[data-action="play"]');

    function api(params) {
      var qsParts = [];
      Object.keys(params).forEach(function (k) { qsParts.push(k + "=" + encodeURIComponent(params[k])); });
      return window.SupportLensApp.fetch(data.eventsUrl + "?" + qsParts.join("&"), { method: "GET" })
        .then(function (r) { if (!r.ok) throw new Error("events " + r.status); return r.json(); });
    }
    function trim(keepFront) {
      if (st.win.length <= WINDOW_MAX) return;
      var extra = st.win.length - WINDOW_MAX;
      if (keepFront) { st.win = st.win.slice(0, WINDOW_MAX); st.next = st.win[st.win.length - 1].c; }
      else { st.win = st.win.slice(extra); st.prev = st.win[0].c; }
    }
    function loadAfter() {
      if (!st.next || st.loading) return st.loading || Promise.resolve(false);
      st.loading = api({ after: st.next, limit: WINDOW_FETCH }).then(function (w) {
        st.win = st.win.concat(w.events); st.next = w.next; trim(false); st.loading = null; return w.events.length > 0;
      }, function () { st.loading = null; return false; });
      return st.loading;
    }
    function loadBefore() {
      if (!st.prev || st.loading) return st.loading || Promise.resolve(false);
      st.loading = api({ before: st.prev, limit: WINDOW_FETCH }).then(function (w) {
        st.win = w.events.concat(st.win); st.prev = w.prev; trim(true); st.loading = null; return w.events.length > 0;
      }, function () { st.loading = null; return false; });
      return st.loading;
    }
    function loadAround(t) {
      st.loading = api({ from_ms: Math.max(0, Math.floor(t)), limit: WINDOW_FETCH }).then(function (w) {
        st.win = w.events; st.next = w.next; st.prev = w.prev; st.loading = null;
        if (st.prev) return loadBefore();
        return true;
      }, function () { st.loading = null; return false; });
      return st.loading;
    }
    function covered(t) {
      if (!st.win.length) return !st.next && !st.prev;
      var first = st.win[0].t, last = st.win[st.win.length - 1].t;
      return (t >= first || !st.prev) && (t <= last || !st.next);
    }

    // ---------------------------------------------------------------- rendering
    function currentNav() { var i = lastAtOrBefore(navs, st.t); return i >= 0 ? navs[i] : null; }
    function renderPage() {
      var nav = currentNav();
      var title = nav ? (nav.title || pathOf(nav.url) || "(untitled page)") : "—";
      var url = nav ? (nav.url || "") : "";
      if (q("title").textContent !== title) q("title").textContent = title;
      if (q("url").textContent !== url) q("url").textContent = url;
      return nav;
    }
    // The story (templates/investigation/_story.html): its step buttons are in time order; the one
    // the player is at is marked, and kept in view inside the story's own scroll box.
    var storyList = q("story-list");
    var storyBtns = storyList ? Array.prototype.slice.call(storyList.querySelectorAll("[data-story-t]")) : [];
    var storyTimes = storyBtns.map(function (b) { return { t: Number(b.getAttribute("data-story-t")) }; });
    var storyCur = -1;
    function renderStory(reveal) {
      if (!storyBtns.length) return;
      var i = lastAtOrBefore(storyTimes, st.t);
      if (i === storyCur && !reveal) return;
      if (storyCur >= 0) {
        storyBtns[storyCur].removeAttribute("aria-current");
        storyBtns[storyCur].parentNode.classList.remove("current");
      }
      storyCur = i;
      if (i < 0) return;
      var b = storyBtns[i];
      b.setAttribute("aria-current", "step");
      b.parentNode.classList.add("current");
      if (reveal) { b.scrollIntoView({ block: "center" }); return; }
      var top = b.offsetTop - storyList.offsetTop, h = storyList.clientHeight;
      if (top < storyList.scrollTop || top + b.offsetHeight > storyList.scrollTop + h) storyList.scrollTop = Math.max(0, top - h / 3);
    }
    function renderCurrent() {
      var idx = lastAtOrBefore(st.win, st.t), box = q("current");
      var ev = idx >= 0 ? st.win[idx] : null;
      var text = ev ? fmt(ev.t) + " · " + describe(ev) : "Start of the session";
      if (box.textContent !== text) {
        box.textContent = text;
        box.className = "player-current" + (ev ? " ev-" + ev.type : "");
      }
    }
    var listKey = "";
    function renderList() {
      var list = q("events"), idx = lastAtOrBefore(st.win, st.t);
      var from = Math.max(0, idx - LIST_BEFORE), to = Math.min(st.win.length, Math.max(idx, 0) + LIST_AFTER);
      var key = (st.win[from] ? st.win[from].id : "") + ":" + to + ":" + idx;
      if (key === listKey) return;
      listKey = key;
      list.replaceChildren();
      for (var i = from; i < to; i++) {
        var ev = st.win[i];
        var li = el("li", "ev ev-" + ev.type + (i === idx ? " current" : "") + (ev.t > st.t ? " future" : ""));
        var b = el("button", "ev-btn");
        b.type = "button";
        b.setAttribute("data-t", ev.t);
        b.appendChild(el("span", "ev-time mono", fmt(ev.t)));
        b.appendChild(el("span", "ev-kind", LABELS[ev.type] || ev.type));
        b.appendChild(el("span", "ev-desc", describe(ev)));
        if (i === idx) b.setAttribute("aria-current", "true");
        li.appendChild(b);
        list.appendChild(li);
      }
      var cur = list.querySelector(".current");
      if (cur) { // keep the current event in view inside the list (never scrolls the page)
        var top = cur.offsetTop - list.offsetTop, h = list.clientHeight;
        if (top < list.scrollTop || top + cur.offsetHeight > list.scrollTop + h) list.scrollTop = Math.max(0, top - h / 3);
      }
    }
    function renderTrack() {
      var track = q("track");
      track.replaceChildren();
      var dur = Math.max(1, st.duration);
      markers.forEach(function (m) {
        if (m.type === "navigation") return;
        var mk = el("span", "mk mk-" + m.type);
        mk.style.left = (100 * m.t / dur).toFixed(3) + "%";
        mk.title = describe(m) + " at " + fmt(m.t);
        track.appendChild(mk);
      });
      navs.forEach(function (m) {
        var mk = el("span", "mk mk-navigation");
        mk.style.left = (100 * m.t / dur).toFixed(3) + "%";
        track.appendChild(mk);
      });
      st.annotations.forEach(function (a) {
        var mk = el("span", "mk mk-note sev-" + a.severity);
        mk.style.left = (100 * Math.min(a.offsetMs, dur) / dur).toFixed(3) + "%";
        mk.title = "Note at " + fmt(a.offsetMs) + ": " + a.note;
        mk.setAttribute("data-note-id", a.id);
        track.appendChild(mk);
      });
    }
    function render() {
      scrubber.value = String(Math.round(st.t));
      scrubber.setAttribute("aria-valuetext", fmt(st.t) + " of " + fmt(st.duration));
      q("time").textContent = fmt(st.t) + " / " + fmt(st.duration);
      var at = qs("note-at"); if (at) at.textContent = fmt(st.t);
      renderPage();
      renderStory(false);
      renderCurrent();
      renderList();
    }

    // ---------------------------------------------------------------- control
    function seek(t, opts) {
      st.t = Math.max(0, Math.min(st.duration, t));
      if (!covered(st.t)) {
        var target = st.t;
        return loadAround(target).then(function () {
          listKey = ""; render();
          if (opts && opts.updateUrl) updateUrl();
        });
      }
      render();
      if (opts && opts.updateUrl) updateUrl();
      return Promise.resolve();
    }
    function updateUrl() {
      if (!root.closest(".inv-panel") && window.history && window.history.replaceState) {
        var u = new URL(window.location.href);
        u.searchParams.set("t", String(Math.round(st.t)));
        window.history.replaceState(null, "", u.toString());
      }
    }
    function setPlaying(on) {
      st.playing = on;
      playBtn.textContent = on ? "❚❚" : "▶";
      playBtn.setAttribute("aria-label", on ? "Pause" : "Play");
      root.classList.toggle("is-playing", on);
      if (on) {
        if (st.t >= st.duration) st.t = 0;
        st.last = performance.now();
        st.timer = window.setInterval(tick, TICK_MS);
      } else {
        if (st.timer) window.clearInterval(st.timer);
        st.timer = null;
        updateUrl();
      }
    }
    function tick() {
      var now = performance.now(), dt = (now - st.last) * st.speed;
      st.last = now;
      var t = st.t + dt, idx = lastAtOrBefore(st.win, st.t), nxt = st.win[idx + 1];
      if (nxt && nxt.t - t > IDLE_SKIP_MS * st.speed) t = nxt.t - 500; // skip idle stretches
      if (st.win.length - idx < 40 && st.next) loadAfter();
      if (!nxt && st.next) { loadAfter(); }
      if (t >= st.duration) { st.t = st.duration; render(); setPlaying(false); return; }
      st.t = t;
      if (!covered(st.t) && !st.loading) { seek(st.t); return; }
      render();
    }
    function step(dir) {
      var idx = lastAtOrBefore(st.win, st.t);
      if (dir > 0) {
        var n = st.win[idx + 1];
        if (n) return seek(n.t, { updateUrl: true });
        if (st.next) return loadAfter().then(function (got) { if (got) step(1); });
      } else {
        var cur = st.win[idx], p = cur && cur.t < st.t ? cur : st.win[idx - 1];
        if (p) return seek(p.t, { updateUrl: true });
        if (st.prev) return loadBefore().then(function (got) { if (got) step(-1); });
      }
    }
    function nextError() {
      var target = null;
      for (var i = 0; i < errors.length; i++) { if (errors[i].t > st.t + 1) { target = errors[i]; break; } }
      if (!target && errors.length && st.t > errors[errors.length - 1].t) target = errors[0];
      var box = q("current");
      if (!target) { box.textContent = "No errors in this session."; return; }
      setPlaying(false);
      seek(target.t, { updateUrl: true }).then(function () {
        var idx = lastAtOrBefore(st.win, target.t);
        while (idx >= 0 && st.win[idx].t === target.t && st.win[idx].type !== "error") idx--;
        render();
      });
    }
    function setSpeed(n) {
      st.speed = n;
      root.querySelectorAll("[data-speed]").forEach(function (b) {
        b.setAttribute("aria-pressed", String(Number(b.getAttribute("data-speed")) === n));
      });
    }

    root.addEventListener("click", function (evt) {
      var b = evt.target.closest("button");
      if (!b || !root.contains(b)) return;
      var action = b.getAttribute("data-action");
      if (action === "play") setPlaying(!st.playing);
      else if (action === "next") { setPlaying(false); step(1); }
      else if (action === "prev") { setPlaying(false); step(-1); }
      else if (action === "next-error") nextError();
      else if (b.hasAttribute("data-speed")) setSpeed(Number(b.getAttribute("data-speed")));
      else if (b.hasAttribute("data-t")) { setPlaying(false); seek(Number(b.getAttribute("data-t")), { updateUrl: true }); }
    });
    q("track").addEventListener("click", function (evt) {
      var rect = evt.currentTarget.getBoundingClientRect();
      seek(((evt.clientX - rect.left) / rect.width) * st.duration, { updateUrl: true });
    });
    scrubber.addEventListener("input", function () { seek(Number(scrubber.value)); });
    scrubber.addEventListener("change", function () { updateUrl(); });
    function onKey(evt) {
      if (!root.isConnected || root.offsetParent === null) return;
      var t = evt.target, tag = t && t.tagName;
      if (evt.ctrlKey || evt.metaKey || evt.altKey) return;
      if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (t && t.isContentEditable)) return;
      if (evt.key === " " || evt.key === "Spacebar") {
        if (tag === "BUTTON" || tag === "A" || tag === "SUMMARY") return; // let the focused control act
        evt.preventDefault(); setPlaying(!st.playing);
      } else if (evt.key === "ArrowRight") { evt.preventDefault(); setPlaying(false); step(1); }
      else if (evt.key === "ArrowLeft") { evt.preventDefault(); setPlaying(false); step(-1); }
      else if (evt.key === "e" || evt.key === "E") { evt.preventDefault(); nextError(); }
    }
    document.addEventListener("keydown", onKey);

    // ---------------------------------------------------------------- notes
    var notesBox = qs("notes");
    function renderNotes() {
      if (!notesBox) return;
      var list = qs("note-list"), empty = qs("no-notes");
      list.replaceChildren();
      empty.hidden = st.annotations.length > 0;
      st.annotations.slice().sort(function (a, b) { return a.offsetMs - b.offsetMs; }).forEach(function (a) {
        var li = el("li", "note-item sev-" + a.severity);
        li.setAttribute("data-note-id", a.id);
        var head = el("div", "row small");
        var jump = el("button", "btn btn-link mono", fmt(a.offsetMs));
        jump.type = "button"; jump.setAttribute("data-jump", a.offsetMs);
        jump.setAttribute("aria-label", "Go to " + fmt(a.offsetMs));
        head.appendChild(jump);
        head.appendChild(el("span", "badge cat-" + a.category, a.category));
        head.appendChild(el("span", "badge sev sev-" + a.severity, a.severity));
        if (a.author) head.appendChild(el("span", "muted", a.author));
        li.appendChild(head);
        li.appendChild(el("p", "note-text", a.note));
        if (data.canAnnotate && (a.userId === data.agentId || data.isAdmin)) {
          var actions = el("div", "row small");
          var ed = el("button", "btn btn-link", "Edit"); ed.type = "button"; ed.setAttribute("data-edit", a.id);
          ed.setAttribute("aria-label", "Edit note at " + fmt(a.offsetMs));
          var del = el("button", "btn btn-link danger", "Delete"); del.type = "button"; del.setAttribute("data-delete", a.id);
          del.setAttribute("aria-label", "Delete note at " + fmt(a.offsetMs));
          actions.appendChild(ed); actions.appendChild(del); li.appendChild(actions);
        }
        list.appendChild(li);
      });
      renderTrack();
    }
    function noteUrl(id) { return data.annotationsUrl + "/" + id; }
    function showError(msg) {
      var box = qs("note-error"); if (!box) return;
      box.textContent = msg; box.hidden = !msg;
    }
    function problemText(r) {
      return r.json().then(function (p) { return (p.field ? p.field + ": " : "") + (p.detail || p.title || "failed"); },
        function () { return "Request failed (" + r.status + ")"; });
    }
    if (notesBox) {
      notesBox.addEventListener("click", function (evt) {
        var b = evt.target.closest("button"); if (!b) return;
        if (b.hasAttribute("data-jump")) { setPlaying(false); seek(Number(b.getAttribute("data-jump")), { updateUrl: true }); }
        else if (b.hasAttribute("data-delete")) {
          var id = b.getAttribute("data-delete");
          if (!window.confirm("Delete this note?")) return;
          window.SupportLensApp.fetch(noteUrl(id), { method: "DELETE" }).then(function (r) {
            if (r.ok) { st.annotations = st.annotations.filter(function (a) { return a.id !== id; }); renderNotes(); }
          });
        } else if (b.hasAttribute("data-edit")) {
          var eid = b.getAttribute("data-edit"), li = b.closest("li"), note = st.annotations.find(function (a) { return a.id === eid; });
          var form = el("form", "stack note-edit");
          var lab = el("label", "visually-hidden", "Edit note"); var tid = "edit-" + eid; lab.htmlFor = tid;
          var ta = el("textarea"); ta.id = tid; ta.value = note.note; ta.maxLength = 2000; ta.rows = 3;
          var save = el("button", "btn btn-small btn-primary", "Save"); save.type = "submit";
          var cancel = el("button", "btn btn-small", "Cancel"); cancel.type = "button";
          var row = el("div", "row"); row.appendChild(save); row.appendChild(cancel);
          form.appendChild(lab); form.appendChild(ta); form.appendChild(row);
          li.replaceChildren(form); ta.focus();
          cancel.addEventListener("click", renderNotes);
          form.addEventListener("submit", function (e) {
            e.preventDefault();
            window.SupportLensApp.fetch(noteUrl(eid), {
              method: "PATCH", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ note: ta.value })
            }).then(function (r) {
              if (!r.ok) return problemText(r).then(showError);
              return r.json().then(function (upd) { note.note = upd.note; showError(""); renderNotes(); });
            });
          });
        }
      });
      var form = qs("note-form");
      if (form) {
        form.addEventListener("submit", function (evt) {
          evt.preventDefault();
          var body = {
            offsetMs: Math.round(st.t), note: form.elements.note.value,
            category: form.elements.category.value, severity: form.elements.severity.value
          };
          if (!body.note.trim()) { showError("note: write something first"); form.elements.note.focus(); return; }
          window.SupportLensApp.fetch(data.annotateUrl, {
            method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body)
          }).then(function (r) {
            if (!r.ok) return problemText(r).then(showError);
            return r.json().then(function (a) {
              st.annotations.push(a); form.elements.note.value = ""; showError(""); renderNotes();
            });
          });
        });
      }
    }

    renderTrack();
    renderNotes();
    // ?t= opens the page at that step: marked, and scrolled into view once the window is loaded.
    if (st.t > 0) seek(st.t).then(function () { renderStory(true); }); else render();
    root.setAttribute("data-ready", "true");
    this.state = st;
    this.seek = seek;
    this.stop = function () { setPlaying(false); document.removeEventListener("keydown", onKey); };
  }

  function mount(scope) {
    (scope || document).querySelectorAll("[data-player]").forEach(function (root) {
      if (root.__player) return;
      root.__player = new Player(root);
    });
  }
  // Session dialog: on wide screens a link with data-session-dialog opens /sessions/{id}/panel in a
  // <dialog> over the page; on phones (or with a modifier key) the link opens the full page as usual.
  var WIDE = "(min-width: 1000px)";
  function loadOnce(path) { // a script the host page may not have loaded (a fragment cannot run one)
    if (document.querySelector('script[data-loaded="' + path + '"]')) return;
    var js = document.createElement("script");
    js.src = "/static/" + path; js.setAttribute("data-loaded", path);
    document.head.appendChild(js);
  }
  function openDialog(href, opener) {
    var panelUrl = href.replace(/^(\/sessions\/[0-9a-fA-F-]{36})(\?.*)?$/, "$1/panel$2");
    var dlg = document.createElement("dialog");
    dlg.className = "session-dialog";
    dlg.setAttribute("aria-label", "Session");
    var bar = el("div", "row session-dialog-bar");
    var full = el("a", "small", "Open as a page");
    full.href = href;
    var close = el("button", "btn btn-small", "Close");
    close.type = "button";
    bar.appendChild(full); bar.appendChild(el("span", "spacer")); bar.appendChild(close);
    var body = el("div", "session-dialog-body", "Loading the session…");
    dlg.appendChild(bar); dlg.appendChild(body);
    document.body.appendChild(dlg);
    dlg.showModal();
    close.addEventListener("click", function () { dlg.close(); });
    dlg.addEventListener("close", function () {
      dlg.querySelectorAll("[data-player]").forEach(function (r) { if (r.__player && r.__player.stop) r.__player.stop(); });
      dlg.remove();
      if (opener && opener.focus) opener.focus();
    });
    window.SupportLensApp.fetch(panelUrl, { method: "GET", headers: { Accept: "text/html" } }).then(function (r) {
      if (!r.ok) throw new Error(String(r.status));
      return r.text();
    }).then(function (html) {
      var doc = new DOMParser().parseFromString(html, "text/html");
      body.replaceChildren();
      Array.prototype.slice.call(doc.body.childNodes).forEach(function (n) { body.appendChild(document.adoptNode(n)); });
      mount(body);
      if (window.SupportLensHeatmap) window.SupportLensHeatmap.mount(body);
      if (window.SupportLensLocaltime) window.SupportLensLocaltime.localize(body);
      else loadOnce("js/localtime.js"); // it localizes the whole document, the dialog included, on load
      if (!window.SupportLensCopy) loadOnce("js/copy.js"); // the fragment's copy buttons
      dlg.setAttribute("data-ready", "true");
    }, function (err) {
      body.textContent = "Could not load the session (" + err.message + ").";
    });
    return dlg;
  }
  document.addEventListener("click", function (evt) {
    var a = evt.target.closest && evt.target.closest("a[data-session-dialog]");
    if (!a || evt.defaultPrevented || evt.button !== 0 || evt.ctrlKey || evt.metaKey || evt.shiftKey || evt.altKey) return;
    if (!window.matchMedia || !window.matchMedia(WIDE).matches || typeof HTMLDialogElement === "undefined") return;
    evt.preventDefault();
    openDialog(a.getAttribute("href"), a);
  });

  window.SupportLensPlayer = { mount: mount, openDialog: openDialog };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", function () { mount(); });
  else mount();
  document.addEventListener("htmx:load", function (evt) { mount(evt.target); });
})();
