// Times in the agent's own time zone: every <time datetime="…"> is rewritten with the browser's zone,
// with UTC (and how long ago) on hover. Inside [data-relative-times] the text also says how long ago,
// unless the element has data-relative="off". data-format: "datetime" (default), "date" or "time".
(function () {
  "use strict";
  var FORMATS = {
    datetime: { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", timeZoneName: "short" },
    date: { year: "numeric", month: "short", day: "numeric" },
    time: { hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short" }
  };
  var formatters = {};
  function formatter(name) {
    if (!formatters[name]) formatters[name] = new Intl.DateTimeFormat(undefined, FORMATS[name] || FORMATS.datetime);
    return formatters[name];
  }
  var relative = typeof Intl.RelativeTimeFormat === "function" ? new Intl.RelativeTimeFormat(undefined, { numeric: "auto" }) : null;
  var UNITS = [["year", 31536000], ["month", 2592000], ["week", 604800], ["day", 86400], ["hour", 3600], ["minute", 60]];

  function ago(date, now) {
    if (!relative) return "";
    var seconds = (date.getTime() - now) / 1000;
    for (var i = 0; i < UNITS.length; i++) {
      if (Math.abs(seconds) >= UNITS[i][1]) return relative.format(Math.round(seconds / UNITS[i][1]), UNITS[i][0]);
    }
    return relative.format(0, "minute");
  }

  function utc(date) {
    return date.toISOString().slice(0, 19).replace("T", " ") + " UTC";
  }

  function localize(root) {
    var now = Date.now();
    (root || document).querySelectorAll("time[datetime]").forEach(function (el) {
      var date = new Date(el.getAttribute("datetime"));
      if (isNaN(date.getTime())) return;
      var when = ago(date, now);
      var text = formatter(el.getAttribute("data-format") || "datetime").format(date);
      if (el.closest("[data-relative-times]") && el.getAttribute("data-relative") !== "off" && when) {
        text += " · " + when;
      }
      el.textContent = text;
      el.title = utc(date) + (when ? " (" + when + ")" : "");
      el.setAttribute("data-localized", "");
    });
  }

  window.SupportLensLocaltime = { localize: localize };
  localize(document);
  document.body.addEventListener("htmx:afterSwap", function (evt) { localize(evt.detail.target); });
  // An outerHTML swap replaces its target: the new element is only seen here.
  document.body.addEventListener("htmx:load", function (evt) { localize(evt.detail.elt); });
})();
