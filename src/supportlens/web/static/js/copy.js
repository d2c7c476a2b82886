// Copy buttons (templates/_copy.html): copy data-copy to the clipboard and say so on the button and to
// screen readers. The value is only ever passed to the Clipboard API as text.
(function () {
  "use strict";
  var live = null;
  function announce(text) {
    if (!live) {
      live = document.createElement("div");
      live.className = "visually-hidden";
      live.setAttribute("role", "status");
      live.setAttribute("aria-live", "polite");
      document.body.appendChild(live);
    }
    live.textContent = "";
    window.setTimeout(function () { live.textContent = text; }, 30);
  }
  function fallback(value) {
    var area = document.createElement("textarea");
    area.value = value;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(area);
    return ok ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }
  document.addEventListener("click", function (evt) {
    var btn = evt.target.closest && evt.target.closest("button[data-copy]");
    if (!btn) return;
    evt.preventDefault();
    var value = btn.getAttribute("data-copy") || "";
    var write = navigator.clipboard && window.isSecureContext ? navigator.clipboard.writeText(value) : fallback(value);
    write.then(function () {
      btn.setAttribute("data-copied", "");
      announce("Copied");
      window.setTimeout(function () { btn.removeAttribute("data-copied"); }, 1500);
    }, function () {
      announce("Could not copy; select the text instead");
    });
  });
})();
