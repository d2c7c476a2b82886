// SupportLens page glue: CSRF header on every htmx/fetch request, "/" focuses the search box.
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.getAttribute("content") : "";
  window.SupportLensApp = { csrf: csrf };

  document.addEventListener("htmx:configRequest", function (evt) {
    if (csrf) evt.detail.headers["X-CSRF-Token"] = csrf;
  });

  // fetch wrapper for the few hand-written interactive pages.
  window.SupportLensApp.fetch = function (url, opts) {
    opts = opts || {};
    opts.headers = Object.assign({ "X-CSRF-Token": csrf, Accept: "application/json" }, opts.headers || {});
    opts.credentials = "same-origin";
    return fetch(url, opts);
  };

  document.addEventListener("keydown", function (evt) {
    if (evt.key !== "/" || evt.ctrlKey || evt.metaKey || evt.altKey) return;
    var t = evt.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable)) return;
    var box = document.querySelector("[data-hotkey='/']");
    if (box) { evt.preventDefault(); box.focus(); box.select(); }
  });
})();
