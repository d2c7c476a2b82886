// Copy buttons (templates/_copy.html): one delegated listener for every [data-copy] button, also
// those added later by htmx or a <dialog>. The value comes from the attribute (never from HTML),
// "Copied" is announced through the button's own aria-live region and shown on the button briefly.
(function () {
  "use strict";
  if (window.SupportLensCopy) return; // loaded twice (a page and a partial): one listener is enough
  var RESET_MS = 1800;

  function legacyCopy(text) {
    // Clipboard API needs a secure context; plain-HTTP intranet hosts fall back to execCommand.
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    area.remove();
    return ok ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).catch(function () { return legacyCopy(text); });
    }
    return legacyCopy(text);
  }
  function announce(button, message, ok) {
    var status = button.parentNode && button.parentNode.querySelector("[data-copy-status]");
    if (status) {
      status.textContent = "";
      // a fresh text node after a tick, so the same message is announced again on a second copy
      window.setTimeout(function () { status.textContent = message; }, 30);
    }
    // The button's own "Copied" / "Copy failed" words are shown by CSS from data-copied.
    button.setAttribute("data-copied", ok ? "true" : "false");
    window.clearTimeout(button.__copyTimer);
    button.__copyTimer = window.setTimeout(function () {
      button.removeAttribute("data-copied");
      if (status) status.textContent = "";
    }, RESET_MS);
  }
  document.addEventListener("click", function (evt) {
    var button = evt.target.closest && evt.target.closest("button[data-copy]");
    if (!button) return;
    evt.preventDefault();
    copyText(button.getAttribute("data-copy")).then(
      function () { announce(button, "Copied", true); },
      function () { announce(button, "Copy failed: select the text and copy it by hand", false); }
    );
  });
  window.SupportLensCopy = { copy: copyText };
})();
