// Add to HubSpot: a dialog that lists the contact's tickets, takes a comment and posts the note.
// Every value from the server goes in with textContent (never innerHTML).
(function () {
  "use strict";

  function fmt(ms) {
    var s = Math.floor(Math.max(0, ms) / 1000), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    var ss = String(s % 60).padStart(2, "0");
    return h ? h + ":" + String(m).padStart(2, "0") + ":" + ss : m + ":" + ss;
  }

  function problemText(r) {
    return r.json().then(function (p) { return p.detail || p.title || ("HTTP " + r.status); },
      function () { return "HTTP " + r.status; });
  }

  function playerPosition() {
    var scrubber = document.querySelector("[data-session-root] [data-role=scrubber]");
    return scrubber ? Math.round(Number(scrubber.value) || 0) : 0;
  }

  function mount(bar) {
    var url = bar.getAttribute("data-url");
    var dialog = bar.querySelector("[data-role=hs-dialog]");
    var form = bar.querySelector("[data-role=hs-form]");
    var list = bar.querySelector("[data-role=hs-ticket-list]");
    var loading = bar.querySelector("[data-role=hs-loading]");
    var error = bar.querySelector("[data-role=hs-error]");
    var done = bar.querySelector("[data-role=hs-done]");
    var made = bar.querySelector("[data-role=hs-made]");
    var submit = bar.querySelector("[data-role=hs-submit]");
    var uid = url.replace(/[^a-z0-9]/gi, "").slice(-12);
    var atMs = 0;

    function showError(text) { error.textContent = text; error.hidden = !text; }

    function madeText(notes) {
      made.textContent = notes.length ? (notes.length === 1 ? "1 note in HubSpot" : notes.length + " notes in HubSpot") : "";
    }

    function radio(value, label, extra, checked) {
      var wrap = document.createElement("label");
      wrap.className = "hs-choice";
      var input = document.createElement("input");
      input.type = "radio"; input.name = "ticket"; input.value = value; input.checked = checked;
      input.id = "hs-t-" + uid + "-" + (value || "none");
      wrap.appendChild(input);
      var text = document.createElement("span");
      text.textContent = label;
      wrap.appendChild(text);
      if (extra) {
        var badge = document.createElement("span");
        badge.className = "badge " + (extra === "Closed" ? "badge-ok" : "badge-warn") + " hs-status";
        badge.textContent = extra;
        wrap.appendChild(badge);
      }
      return wrap;
    }

    function load() {
      list.textContent = ""; loading.hidden = false; loading.textContent = "Loading the contact's tickets…";
      return window.SupportLensApp.fetch(url, { method: "GET" }).then(function (r) {
        if (!r.ok) return problemText(r).then(function (t) { loading.textContent = "Tickets could not be loaded: " + t; });
        return r.json().then(function (data) {
          loading.hidden = true;
          list.appendChild(radio("", "No ticket (the contact only)", "", true));
          data.tickets.forEach(function (t) { list.appendChild(radio(t.id, t.subject || ("Ticket " + t.id), t.status || "", false)); });
          if (!data.tickets.length) { loading.hidden = false; loading.textContent = "This contact has no tickets."; }
          madeText(data.notes);
        });
      }, function () { loading.textContent = "Tickets could not be loaded: SupportLens did not answer."; });
    }

    bar.querySelector("[data-action=hs-open]").addEventListener("click", function () {
      atMs = playerPosition();
      bar.querySelector("[data-role=hs-at]").textContent = fmt(atMs);
      form.elements.scope.value = atMs > 0 ? "moment" : "session";
      showError(""); done.hidden = true;
      dialog.showModal();
      load();
    });
    bar.querySelector("[data-action=hs-close]").addEventListener("click", function () { dialog.close(); });
    // The player listens for keys on the document: typing or choosing here must not move it.
    dialog.addEventListener("keydown", function (evt) { if (evt.key !== "Escape") evt.stopPropagation(); });

    form.addEventListener("submit", function (evt) {
      evt.preventDefault();
      var body = {};
      var ticket = form.elements.ticket ? form.elements.ticket.value : "";
      if (ticket) body.ticketId = ticket;
      if (form.elements.scope.value === "moment") body.atMs = atMs;
      var comment = form.elements.comment.value.trim();
      if (comment) body.comment = comment;
      submit.disabled = true; showError(""); done.hidden = true;
      window.SupportLensApp.fetch(url, {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body)
      }).then(function (r) {
        if (!r.ok) return problemText(r).then(showError);
        return r.json().then(function (note) {
          bar.querySelector("[data-role=hs-done-text]").textContent =
            r.status === 201 ? "Added to HubSpot." : "Already in HubSpot: the same note" + (comment ? " (comment updated)." : ".");
          var link = bar.querySelector("[data-role=hs-done-link]");
          link.href = note.url;
          done.hidden = false;
          done.setAttribute("data-note-id", note.noteId);
          window.SupportLensApp.fetch(url, { method: "GET" }).then(function (x) {
            if (x.ok) x.json().then(function (d) { madeText(d.notes); });
          });
        });
      }, function () { showError("SupportLens did not answer; nothing was added. Try again."); })
        .then(function () { submit.disabled = false; });
    });
  }

  function init() { document.querySelectorAll("[data-hubspot-note]").forEach(mount); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
