// Customer analytics charts (Chart.js); every chart has a table with the same figures beside it.
(function () {
  "use strict";
  function init() {
    var holder = document.getElementById("customer-analytics-data");
    if (!holder || typeof window.Chart !== "function") return;
    var data = JSON.parse(holder.textContent);
    var reduce = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    window.Chart.defaults.animation = reduce ? false : window.Chart.defaults.animation;
    window.Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    // Colours from the stylesheet's custom properties, resolved for the current theme: a custom
    // property reads back as its light-dark() text, so a probe element turns it into rgb().
    var probe = document.createElement("span");
    probe.hidden = true;
    document.body.appendChild(probe);
    function css(name) { probe.style.color = "var(" + name + ")"; return getComputedStyle(probe).color; }
    var c = { primary: css("--primary"), teal: css("--src-dwolla"), orange: css("--src-hubspot"), violet: css("--sev-high"),
              muted: css("--muted"), danger: css("--danger"), rage: css("--rage"), dead: css("--dead") };
    window.Chart.defaults.color = c.muted;
    window.Chart.defaults.borderColor = css("--border");
    window.Chart.defaults.elements.arc.borderColor = css("--surface");
    probe.remove();
    var days = data.days.map(function (d) { return d.day; });
    function make(name, config) {
      var canvas = document.querySelector('[data-chart="' + name + '"]');
      if (!canvas) return;
      config.options = Object.assign({ responsive: true, maintainAspectRatio: true, aspectRatio: 1.8 }, config.options || {});
      canvas.__chart = new window.Chart(canvas, config);
    }
    make("sessions", {
      type: "bar",
      data: { labels: days, datasets: [{ label: "Sessions", data: data.days.map(function (d) { return d.sessions; }), backgroundColor: c.primary, maxBarThickness: 48 }] },
      options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } }, plugins: { legend: { display: false } } }
    });
    make("devices", {
      type: "doughnut",
      data: {
        labels: data.devices.map(function (d) { return d.device; }),
        datasets: [{ data: data.devices.map(function (d) { return d.sessions; }), backgroundColor: [c.primary, c.teal, c.orange, c.violet, c.muted] }]
      },
      options: { aspectRatio: 1.8, plugins: { legend: { position: "right" } } }
    });
    make("pages", {
      type: "bar",
      data: {
        labels: data.topPages.map(function (p) { var u = p.url; try { u = new URL(p.url).pathname; } catch (e) { /* keep */ } return u; }),
        datasets: [{ label: "Views", data: data.topPages.map(function (p) { return p.views; }), backgroundColor: c.teal, maxBarThickness: 32 }]
      },
      options: { indexAxis: "y", scales: { x: { beginAtZero: true, ticks: { precision: 0 } } }, plugins: { legend: { display: false } } }
    });
    make("frustration", {
      type: "bar",
      data: {
        labels: days,
        datasets: [
          { label: "Errors", data: data.days.map(function (d) { return d.errors; }), borderColor: c.danger, backgroundColor: c.danger, maxBarThickness: 24 },
          { label: "Rage clicks", data: data.days.map(function (d) { return d.rageClicks; }), borderColor: c.rage, backgroundColor: c.rage, maxBarThickness: 24 },
          { label: "Dead clicks", data: data.days.map(function (d) { return d.deadClicks; }), borderColor: c.dead, backgroundColor: c.dead, maxBarThickness: 24 }
        ]
      },
      options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } }
    });
    document.querySelector("[data-charts]").setAttribute("data-ready", "true");
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
