// Click heatmaps drawn with simpleheat on a canvas; points come from the heatmap API (per page of the <select>).
(function () {
  "use strict";

  function mode(values, fallback) {
    var counts = {}, best = fallback, n = 0;
    values.forEach(function (v) { counts[v] = (counts[v] || 0) + 1; if (counts[v] > n) { n = counts[v]; best = v; } });
    return best;
  }

  function draw(root, heat) {
    var canvas = root.querySelector('[data-role="heat-canvas"]');
    var summary = root.querySelector('[data-role="heat-summary"]');
    if (!canvas || typeof window.simpleheat !== "function") return;
    var points = heat.points || [];
    var vw = mode(points.map(function (p) { return p.w; }), 1280);
    var vh = mode(points.map(function (p) { return p.h; }), 800);
    var width = Math.max(200, Math.min(canvas.parentElement.clientWidth || 640, 1100));
    var scale = width / vw, maxY = vh;
    points.forEach(function (p) { var y = p.y * (vw / (p.w || vw)); if (y + 40 > maxY) maxY = y + 40; });
    maxY = Math.min(maxY, vh * 4);
    canvas.width = Math.round(width);
    canvas.height = Math.round(maxY * scale);
    var hm = window.simpleheat(canvas), maxW = 1;
    var pts = points.map(function (p) {
      var s = width / (p.w || vw); // each point scaled by its own viewport width
      return [p.x * s, p.y * s, p.weight];
    });
    var totals = {};
    points.forEach(function (p) { totals[p.type] = (totals[p.type] || 0) + 1; });
    maxW = Math.max(1, Math.min(6, points.length / 8));
    hm.data(pts).max(maxW).radius(Math.max(10, 22 * scale), Math.max(8, 18 * scale)).draw(0.15);
    canvas.setAttribute("aria-label", "Heatmap of " + points.length + " clicks on " + (heat.url || "this page"));
    if (summary) {
      summary.textContent = points.length + " clicks on " + (heat.url || "—") + " (" + (totals.rage_click || 0) +
        " rage, " + (totals.dead_click || 0) + " dead); page width " + vw + " px, drawn at " + Math.round(scale * 100) + "%.";
    }
    root.setAttribute("data-points", String(points.length));
  }

  function fill(root, heat) {
    var select = root.querySelector('[data-role="heat-page"]');
    var pages = heat.pages || [];
    var show = pages.length > 0;
    ["heat-page", "heat-label", "heat-wrap"].forEach(function (role) {
      var n = root.querySelector('[data-role="' + role + '"]');
      if (n) n.hidden = !show;
    });
    if (!show) {
      root.querySelector('[data-role="heat-summary"]').textContent = "No clicks recorded.";
      root.setAttribute("data-points", "0");
      return;
    }
    if (!select.options.length) {
      pages.forEach(function (p) {
        var o = document.createElement("option");
        o.value = p.url;
        o.textContent = p.url + " (" + p.clicks + " clicks)";
        select.appendChild(o);
      });
    }
    select.value = heat.url;
    draw(root, heat);
  }

  function load(root, url) {
    var target = root.getAttribute("data-heatmap-url") + (url ? "?url=" + encodeURIComponent(url) : "");
    return window.SupportLensApp.fetch(target, { method: "GET" }).then(function (r) {
      if (!r.ok) throw new Error("heatmap " + r.status);
      return r.json();
    });
  }

  function mount(scope) {
    (scope || document).querySelectorAll("[data-heatmap]").forEach(function (root) {
      if (root.__heat) return;
      root.__heat = true;
      var heat = { points: [], pages: [] };
      load(root).then(function (h) { heat = h; fill(root, h); }, function () {
        root.querySelector('[data-role="heat-summary"]').textContent = "Could not load the clicks; reload to try again.";
      });
      var select = root.querySelector('[data-role="heat-page"]');
      select.addEventListener("change", function () {
        load(root, select.value).then(function (h) { heat = h; draw(root, h); });
      });
      var pending = null;
      window.addEventListener("resize", function () {
        if (pending) window.clearTimeout(pending);
        pending = window.setTimeout(function () { if (heat.points.length) draw(root, heat); }, 150);
      });
    });
  }
  window.SupportLensHeatmap = { mount: mount };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", function () { mount(); });
  else mount();
  document.addEventListener("htmx:load", function (evt) { mount(evt.target); });
})();
