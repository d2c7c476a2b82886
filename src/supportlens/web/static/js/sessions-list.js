// Sessions panel: j / k move between the session rows, Enter opens the focused one. Not while the agent
// types in a field, nor with a modifier key held; only rows on screen (a phone shows one panel at a time).
(function () {
  "use strict";
  function typing(el) {
    if (!el) return false;
    var tag = el.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || el.isContentEditable;
  }
  function rows() {
    return Array.prototype.filter.call(document.querySelectorAll(".sessions-list .session-row"), function (r) {
      return r.offsetParent !== null;
    });
  }
  function focusRow(row) {
    rows().forEach(function (r) { r.setAttribute("tabindex", r === row ? "0" : "-1"); });
    row.focus({ preventScroll: true });
    row.scrollIntoView({ block: "nearest" });
  }
  document.addEventListener("keydown", function (evt) {
    if (evt.defaultPrevented || evt.ctrlKey || evt.metaKey || evt.altKey || typing(evt.target)) return;
    if (document.querySelector("dialog[open]")) return;
    var current = document.activeElement && document.activeElement.closest
      ? document.activeElement.closest(".session-row") : null;
    if (evt.key === "Enter") {
      if (!current || document.activeElement !== current) return; // a link or button inside acts itself
      var link = current.querySelector(".session-card__link");
      if (link) { evt.preventDefault(); link.click(); }
      return;
    }
    if (evt.key !== "j" && evt.key !== "k") return;
    var list = rows();
    if (!list.length) return;
    var i = current ? list.indexOf(current) : -1;
    var next = evt.key === "j" ? (i < 0 ? 0 : Math.min(i + 1, list.length - 1)) : (i < 0 ? 0 : Math.max(i - 1, 0));
    evt.preventDefault();
    focusRow(list[next]);
  });
})();
