// Search page: tabs on phones, per-panel status, and fallbacks when a panel request fails.
(function () {
  "use strict";
  var page = document.getElementById("search-page");
  if (!page) return;

  // --- tabs (phones show one panel at a time; desktop shows all three side by side)
  var tabs = Array.prototype.slice.call(page.querySelectorAll(".search-tab"));
  function activate(name, focus) {
    tabs.forEach(function (tab) {
      var on = tab.getAttribute("data-tab") === name;
      tab.setAttribute("aria-selected", on ? "true" : "false");
      tab.setAttribute("tabindex", on ? "0" : "-1");
      if (on && focus) tab.focus();
    });
    page.querySelectorAll(".search-panel").forEach(function (panel) {
      panel.classList.toggle("is-active", panel.getAttribute("data-panel") === name);
    });
  }
  tabs.forEach(function (tab, i) {
    tab.addEventListener("click", function () { activate(tab.getAttribute("data-tab"), false); });
    tab.addEventListener("keydown", function (evt) {
      var next = null;
      if (evt.key === "ArrowRight") next = tabs[(i + 1) % tabs.length];
      if (evt.key === "ArrowLeft") next = tabs[(i - 1 + tabs.length) % tabs.length];
      if (next) { evt.preventDefault(); activate(next.getAttribute("data-tab"), true); }
    });
  });

  // --- per-panel state: aria-busy off and a status mark on the tab once a panel has answered
  function panelOf(el) { return el && el.closest ? el.closest(".search-panel") : null; }
  function markPanel(panel) {
    if (!panel) return;
    var name = panel.getAttribute("data-panel");
    var stateEl = panel.querySelector("[data-state]");
    var state = stateEl ? stateEl.getAttribute("data-state") : "ok";
    panel.setAttribute("aria-busy", state === "loading" ? "true" : "false");
    panel.setAttribute("data-result", state);
    var mark = page.querySelector("[data-status-for='" + name + "']");
    if (mark) {
      mark.className = "tab-status tab-status-" + state;
      mark.textContent = state === "error" || state === "timeout" ? "!" : "";
      mark.setAttribute("aria-label", state === "error" || state === "timeout" ? "failed" : state);
    }
  }

  function showFailure(target, xhr) {
    var panel = panelOf(target);
    if (target.matches && target.matches("[data-sessions-slot]")) {
      var tpl = document.getElementById("sessions-missing-template");
      if (xhr && xhr.status === 404 && tpl) {
        target.innerHTML = "";
        target.appendChild(tpl.content.cloneNode(true));
      } else {
        target.innerHTML = "";
        var p = document.createElement("div");
        p.className = "alert alert-error";
        p.setAttribute("data-state", "error");
        p.textContent = "Sessions could not be loaded" + (xhr && xhr.status ? " (HTTP " + xhr.status + ")." : ".");
        target.appendChild(p);
      }
      markPanel(panel);
      return;
    }
    if (!panel) return;
    var name = panel.getAttribute("data-panel");
    var body = panel.querySelector(".panel-body");
    var box = document.createElement("div");
    box.className = "panel-error alert alert-error";
    box.setAttribute("role", "alert");
    box.setAttribute("data-state", "error");
    var msg = document.createElement("p");
    msg.textContent = "This panel could not be loaded" + (xhr && xhr.status ? " (HTTP " + xhr.status + ")." : " (network error).");
    var retry = document.createElement("button");
    retry.type = "button";
    retry.className = "btn btn-small";
    retry.textContent = "Retry";
    retry.setAttribute("data-retry", "");
    retry.addEventListener("click", function () {
      var url = body.getAttribute("hx-get");
      if (window.htmx && url) {
        body.innerHTML = "";
        window.htmx.ajax("GET", url + (url.indexOf("refresh=1") < 0 ? "&refresh=1" : ""), { target: body, swap: "innerHTML" });
      }
    });
    box.appendChild(msg);
    box.appendChild(retry);
    body.innerHTML = "";
    body.appendChild(box);
    markPanel(panel);
  }

  // --- badges joining the "what happened" summary's transfers and sessions, whichever answers last:
  // the transfer row points at the session card and the card at the transfer row.
  function badge(href, text, kind) {
    var a = document.createElement("a");
    a.className = "badge trouble-badge " + kind;
    a.href = href;
    a.textContent = text;
    return a;
  }
  function minutesText(m) {
    var n = m.getAttribute("data-minutes");
    return (n === "0" ? "under a minute" : n + " min") + " " + m.getAttribute("data-when");
  }
  function linkTrouble() {
    var summary = document.getElementById("summary");
    if (!summary) return;
    summary.querySelectorAll("[data-testid=summary-failure]").forEach(function (f) {
      var tid = f.getAttribute("data-transfer-id");
      var moments = f.querySelectorAll("[data-testid=summary-moment]");
      if (!moments.length) return;
      var row = page.querySelector("#panel-dwolla tr[data-transfer-id='" + CSS.escape(tid) + "']");
      if (row && !row.querySelector(".trouble-badge")) {
        var first = moments[0];
        var sid = first.getAttribute("data-session-id");
        var cell = row.lastElementChild;
        cell.appendChild(document.createTextNode(" "));
        cell.appendChild(badge("#session-" + sid + "-title",
          "Session trouble " + minutesText(first).replace("before", "before it").replace("after", "after it"), "badge-warn"));
      }
      moments.forEach(function (m) {
        var sid = m.getAttribute("data-session-id");
        var card = page.querySelector("#panel-sessions .session-card[data-session-id='" + CSS.escape(sid) + "']");
        if (!card || card.querySelector(".trouble-badge[data-for='" + CSS.escape(tid) + "']")) return;
        var code = f.getAttribute("data-code");
        var n = m.getAttribute("data-minutes");
        var b = badge("#transfer-" + tid, (code ? code + " " : "") + f.getAttribute("data-amount") +
          " payment returned " + (n === "0" ? "under a minute" : n + " min") + " " +
          (m.getAttribute("data-when") === "before" ? "later" : "earlier"), "badge-danger");
        b.setAttribute("data-for", tid);
        var head = card.querySelector("header") || card;
        head.appendChild(b);
      });
    });
  }
  // A badge pointing into another panel shows that panel first (phones show one at a time).
  page.addEventListener("click", function (evt) {
    var a = evt.target.closest && evt.target.closest("a.trouble-badge");
    if (!a) return;
    var target = document.getElementById(a.getAttribute("href").slice(1));
    var panel = panelOf(target);
    if (panel) activate(panel.getAttribute("data-panel"), false);
  });

  document.body.addEventListener("htmx:afterSwap", function (evt) {
    markPanel(panelOf(evt.detail.target));
    linkTrouble();
    // After a retry or refresh of HubSpot or Dwolla, compare the two systems again.
    var path = (evt.detail.requestConfig && evt.detail.requestConfig.path) || "";
    var id = evt.detail.target && evt.detail.target.id;
    if ((id === "panel-body-hubspot" || id === "panel-body-dwolla") && path.indexOf("refresh=1") >= 0) {
      var banner = document.getElementById("correlation");
      if (banner && window.htmx) window.htmx.ajax("GET", banner.getAttribute("hx-get"), { target: banner, swap: "innerHTML" });
    }
    // The summary and the Dwolla panel read the same Dwolla answer: a retry of one that worked
    // brings back the other if it is still showing an error.
    if (path.indexOf("refresh=1") >= 0 && window.htmx) {
      var other = id === "summary" ? document.getElementById("panel-body-dwolla")
        : id === "panel-body-dwolla" ? document.getElementById("summary") : null;
      var succeeded = !evt.detail.target.querySelector("[data-state=error], [data-state=timeout]");
      if (other && succeeded && other.querySelector("[data-state=error], [data-state=timeout]")) {
        window.htmx.ajax("GET", other.getAttribute("hx-get"), { target: other, swap: "innerHTML" });
      }
    }
  });
  document.body.addEventListener("htmx:beforeRequest", function (evt) {
    var panel = panelOf(evt.detail.target || evt.target);
    if (panel) panel.setAttribute("aria-busy", "true");
  });
  document.body.addEventListener("htmx:responseError", function (evt) {
    showFailure(evt.detail.target, evt.detail.xhr);
  });
  document.body.addEventListener("htmx:sendError", function (evt) {
    showFailure(evt.detail.target, null);
  });
})();
