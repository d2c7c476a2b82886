// The issue page's timeline (Chart.js): occurrences per hour; the figures are also in the sentence above it.
(function () {
  "use strict";
  function init() {
    var holder = document.getElementById("issue-timeline-data");
    var canvas = document.querySelector('[data-chart="issue-timeline"]');
    if (!holder || !canvas || typeof window.Chart !== "function") return;
    var data = JSON.parse(holder.textContent);
    var probe = document.createElement("span");
    probe.hidden = true;
    document.body.appendChild(probe);
    function css(name) { probe.style.color = "var(" + name + ")"; return getComputedStyle(probe).color; }
    var colour = css("--danger");
    window.Chart.defaults.color = css("--muted");
    window.Chart.defaults.borderColor = css("--border");
    probe.remove();
    var reduce = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    var labels = data.hours.map(function (h) { return h.slice(5, 13).replace("T", " ") + ":00"; });
    canvas.__chart = new window.Chart(canvas, {
      type: "bar",
      data: { labels: labels, datasets: [{ label: "Occurrences", data: data.counts, backgroundColor: colour, maxBarThickness: 8 }] },
      options: {
        animation: reduce ? false : undefined,
        responsive: true,
        maintainAspectRatio: false,
        scales: { x: { ticks: { maxTicksLimit: 8, autoSkip: true } }, y: { beginAtZero: true, ticks: { precision: 0 } } },
        plugins: { legend: { display: false } }
      }
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
