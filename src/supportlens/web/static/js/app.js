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

// Theme toggle (account menu): change colours at once, then save the choice on the agent.
// Without JS the form posts and the page reloads with the new <html data-theme>.
(function () {
  "use strict";
  document.addEventListener("click", function (evt) {
    var button = evt.target.closest && evt.target.closest("[data-theme-form] button[name=theme]");
    if (!button) return;
    evt.preventDefault();
    var form = button.form;
    var theme = button.value;
    document.documentElement.setAttribute("data-theme", theme);
    form.querySelectorAll("button[name=theme]").forEach(function (b) {
      b.setAttribute("aria-pressed", b === button ? "true" : "false");
    });
    var body = new URLSearchParams({ theme: theme, csrf_token: window.SupportLensApp.csrf });
    var postForm = function () {  // refused or offline: the plain form post says why
      var field = document.createElement("input");
      field.type = "hidden"; field.name = "theme"; field.value = theme;
      form.appendChild(field);
      form.submit();
    };
    window.SupportLensApp.fetch(form.action, { method: "POST", body: body })
      .then(function (r) { if (!r.ok) postForm(); }, postForm);
  });
})();
