// Journey page: a link to "#<anchor>" (from the search page's summary or a pair at the top) opens
// the day holding that moment, scrolls to it and highlights it.
(function () {
  "use strict";
  function land() {
    var id = decodeURIComponent(window.location.hash.slice(1));
    if (!id) return;
    var item = document.getElementById(id);
    if (!item || !item.classList.contains("j-item")) return;
    var day = item.closest("details");
    if (day) day.open = true;
    document.querySelectorAll(".j-item.is-target").forEach(function (el) { el.classList.remove("is-target"); });
    item.classList.add("is-target");
    item.scrollIntoView({ block: "center" });
    item.focus({ preventScroll: true });
  }
  window.addEventListener("hashchange", land);
  land();
})();
