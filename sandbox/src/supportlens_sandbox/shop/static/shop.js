// Demo shop glue: start the real Clarity tracker with a same-origin upload path, identify the
// signed-in customer with SupportLens, and wire the product page and the two broken payment buttons.
(function () {
  var me = document.currentScript;
  var project = me.getAttribute("data-clarity-project");
  window.clarity("start", { projectId: project, upload: "/collect", track: true, lean: false });

  document.addEventListener("DOMContentLoaded", function () {
    var b = document.body;
    var email = b.getAttribute("data-customer-email");
    if (email && window.SupportLens) {
      window.SupportLens.identify({ email: email, id: b.getAttribute("data-customer-id"), name: b.getAttribute("data-customer-name") });
    }
    var toggle = document.getElementById("details-toggle");
    if (toggle) toggle.addEventListener("click", function () {
      var d = document.getElementById("details");
      d.hidden = !d.hidden;
    });
    // "Pay now" is broken on purpose: its handler was never attached (a dead click).
    var saved = document.getElementById("pay-saved");
    if (saved) saved.addEventListener("click", function () {
      var wallet = window.savedWallet; // never defined: throws a TypeError
      wallet.charge();
    });
  });
})();
