/*! SupportLens browser SDK v1: links the visitor's Microsoft Clarity session to the signed-in customer.
 * <script src="https://supportlens.example.com/sdk/v1/supportlens.js" data-site-key="pk_live_..."></script>
 * Optional: data-endpoint="https://..." (default: the origin this file came from),
 * data-require-consent="true", data-clarity-project="<id>", data-flush-interval="5000" (ms).
 * No dependencies; never throws into the page. */
(function (w, d) {
  "use strict";
  if (w.SupportLens && w.SupportLens.v) return;
  var noop = function () {};
  function safe(fn) {
    return function () {
      try { return fn.apply(this, arguments); } catch (e) { return undefined; }
    };
  }
  var S = (w.SupportLens = { v: 1, identify: noop, consent: noop, track: noop, flush: noop });
  try {
    var el = d.currentScript || d.querySelector("script[data-site-key]") || {};
    var attr = function (n) { return (el.getAttribute && el.getAttribute(n)) || ""; };
    var key = attr("data-site-key");
    var base = attr("data-endpoint") || (el.src ? new URL(el.src, location.href).origin : location.origin);
    var url = base.replace(/\/+$/, "") + "/api/ingest/v1/events";
    var needConsent = attr("data-require-consent") === "true";
    var every = +attr("data-flush-interval") || 5000;
    var MAX_BUF = 1000, MAX_RETRY = 20, BATCH = 100, MAX_BYTES = 200000;
    var ids = null, customer = null, consent = null, clarityConsent = null, stopped = false;
    var buf = [], retry = [], pending = [], backoff = 0, nextTry = 0, sending = false;
    // Automation signals: navigator.webdriver, and whether a person has acted yet (trusted input only:
    // events a script dispatches are not trusted).
    var interacted = false;
    var lastUrl = location.href, maxDepth = 0, sentDepth = 0, errors = 0;
    var lastMutation = 0, lastNav = 0, recent = [];

    var uuid = function () {
      var c = w.crypto;
      if (c && c.randomUUID) return c.randomUUID();
      var b = new Uint8Array(16), i;
      if (c && c.getRandomValues) c.getRandomValues(b);
      else for (i = 0; i < 16; i++) b[i] = (Math.random() * 256) | 0;
      b[6] = (b[6] & 15) | 64; b[8] = (b[8] & 63) | 128;
      var h = [];
      for (i = 0; i < 16; i++) h.push((b[i] + 256).toString(16).slice(1));
      return h.slice(0, 4).join("") + "-" + h.slice(4, 6).join("") + "-" + h.slice(6, 8).join("") + "-" +
        h.slice(8, 10).join("") + "-" + h.slice(10).join("");
    };
    var cut = function (s, n) { return String(s == null ? "" : s).replace(/\s+/g, " ").trim().slice(0, n); };

    var allowed = function () {
      if (stopped || consent === false) return false;
      if (!needConsent) return clarityConsent !== false || consent === true;
      return consent === true || (consent === null && clarityConsent === true);
    };
    var drop = function () { buf = []; retry = []; };

    var push = function (type, data, extra) {
      if (stopped || consent === false) return;
      var e = { id: uuid(), type: type, ts: new Date().toISOString(), url: cut(location.href, 2048), data: data || {} };
      for (var k in extra) e[k] = extra[k];
      buf.push(e);
      if (buf.length > MAX_BUF) buf.splice(0, buf.length - MAX_BUF);
      if (buf.length >= 50) flush();
    };

    // ---- Clarity: ids, consent, identify (calls wait until Clarity is there) ----
    var cookie = function (n) {
      var m = d.cookie.match(new RegExp("(?:^|; )" + n + "=([^;]*)"));
      return m ? decodeURIComponent(m[1]).split("^") : null;
    };
    var clarity = function () { return typeof w.clarity === "function" ? w.clarity : null; };
    var asked = false;
    var readIds = function () {
      var c = clarity();
      if (c && !asked) {
        asked = true;
        c("metadata", safe(function (m, up, cs) {
          asked = false;
          if (m && m.userId && m.sessionId) {
            ids = { projectId: cut(m.projectId || attr("data-clarity-project"), 64), userId: cut(m.userId, 64),
              sessionId: cut(m.sessionId, 64), pageNum: +m.pageNum || null };
          }
          // Clarity's implicit default (source 0 Implicit, 7 Default) is no answer from the visitor:
          // on a site that requires consent only an explicit grant counts; a denial always does.
          if (cs && cs.analytics_Storage) clarityConsent = cs.analytics_Storage !== "granted" ? false
            : cs.source === 0 || cs.source === 7 ? null : true;
          if (needConsent && clarityConsent === false && consent !== true) drop();
        }), false, false, true);
      }
      while (c && pending.length) c.apply(w, pending.shift());
      if (!ids) {
        var ck = cookie("_clck"), sk = cookie("_clsk");
        if (ck && sk && ck[0] && sk[0]) {
          ids = { projectId: cut(attr("data-clarity-project"), 64), userId: cut(ck[0], 64),
            sessionId: cut(sk[0], 64), pageNum: +sk[2] || null };
        }
      }
    };
    var callClarity = function (args) {
      var c = clarity();
      if (c) c.apply(w, args); else if (pending.length < 50) pending.push(args);
    };

    // ---- sending ----
    var send = function (body, beacon) {
      if (beacon && navigator.sendBeacon) {
        try { if (navigator.sendBeacon(url, new Blob([body], { type: "text/plain" }))) return; } catch (e) { /* retry below */ }
      }
      if (!w.fetch) return;
      sending = true;
      w.fetch(url, { method: "POST", body: body, headers: { "Content-Type": "text/plain" }, mode: "cors",
        credentials: "omit", keepalive: body.length < 60000 })
        .then(function (r) {
          sending = false;
          if (r.status < 300 || (r.status < 500 && r.status !== 429)) { backoff = 0; return; }
          fail(body, +r.headers.get("Retry-After"));
        }, function () { sending = false; fail(body, 0); })["catch"](noop);
    };
    var fail = function (body, after) {
      if (!allowed()) return;
      backoff = Math.min(backoff ? backoff * 2 : 1000, 60000);
      nextTry = Date.now() + Math.max(backoff, (after || 0) * 1000);
      retry.push(body);
      if (retry.length > MAX_RETRY) retry.shift();
    };
    var scrollEvent = function () {
      if (maxDepth > sentDepth) { sentDepth = maxDepth; push("scroll", { depth: maxDepth }); }
    };
    var flush = function (beacon) {
      readIds(); // also refreshes Clarity's consent state, so a later consentv2 "denied" is followed
      if (!ids || !key || !allowed()) return;
      if (!beacon) {
        if (sending || Date.now() < nextTry) return;
        if (retry.length) return send(retry.shift(), false); // one at a time until the endpoint is back
      }
      while (retry.length) send(retry.shift(), true);
      while (buf.length) {
        var n = Math.min(BATCH, buf.length), body;
        for (;;) {
          body = JSON.stringify({ siteKey: key, clarity: ids, customer: customer,
            consent: consent === true || clarityConsent === true ? { analytics: true } : null,
            page: { url: cut(location.href, 2048), title: cut(d.title, 300), referrer: cut(d.referrer, 2048),
              viewport: { w: w.innerWidth | 0, h: w.innerHeight | 0 } },
            automation: { webdriver: navigator.webdriver === true, interacted: interacted },
            events: buf.slice(0, n) });
          if (body.length <= MAX_BYTES || n === 1) break;
          n = Math.ceil(n / 2);
        }
        buf.splice(0, n);
        send(body, beacon);
        if (!beacon) break;
      }
    };

    // ---- what the visitor does ----
    var selector = function (node) {
      var parts = [], depth = 0;
      while (node && node.nodeType === 1 && depth++ < 5) {
        if (node.id) { parts.unshift("#" + cut(node.id, 60)); break; }
        var p = node.tagName.toLowerCase(), cls = (node.getAttribute("class") || "").trim().split(/\s+/).slice(0, 2);
        if (cls[0]) p += "." + cls.join(".");
        var sib = node, i = 1;
        while ((sib = sib.previousElementSibling)) if (sib.tagName === node.tagName) i++;
        if (i > 1) p += ":nth-of-type(" + i + ")";
        parts.unshift(p);
        node = node.parentElement;
      }
      return cut(parts.join(" > "), 512);
    };
    var navigated = function (how) {
      if (location.href === lastUrl) return;
      scrollEvent();
      maxDepth = sentDepth = 0;
      lastNav = Date.now();
      push("navigation", { from: cut(lastUrl, 2048), how: how });
      lastUrl = location.href;
      readIds();
    };
    var wrap = function (name) {
      var orig = history[name];
      if (!orig) return;
      history[name] = function () {
        var r = orig.apply(this, arguments);
        safe(navigated)(name);
        return r;
      };
    };
    wrap("pushState"); wrap("replaceState");
    w.addEventListener("popstate", safe(function () { navigated("popstate"); }));

    var human = function (ev) { if (ev && ev.isTrusted) interacted = true; };
    ["pointerdown", "keydown", "touchstart", "wheel"].forEach(function (name) {
      w.addEventListener(name, human, { capture: true, passive: true });
    });
    w.addEventListener("scroll", human, { capture: true, passive: true });
    d.addEventListener("click", safe(function (ev) {
      var t = ev.target && ev.target.nodeType === 1 ? ev.target : ev.target && ev.target.parentElement;
      if (!t) return;
      var act = t.closest ? t.closest("a,button,[role=button],input[type=submit],input[type=button]") : null;
      var node = act || t, x = Math.round(ev.pageX || 0), y = Math.round(ev.pageY || 0), now = Date.now();
      var sel = selector(node), text = node.tagName === "INPUT" ? cut(node.getAttribute("aria-label") || node.type, 80)
        : cut(node.innerText || node.textContent || node.getAttribute("aria-label") || node.title, 80);
      push("click", { text: text }, { selector: sel, x: x, y: y });
      recent = recent.filter(function (c) { return now - c.t <= 1000 && Math.abs(c.x - x) <= 30 && Math.abs(c.y - y) <= 30; });
      recent.push({ t: now, x: x, y: y });
      if (recent.length >= 3) {
        push("rage_click", { text: text, clicks: recent.length }, { selector: sel, x: x, y: y });
        recent = [];
      }
      if (act) {
        setTimeout(safe(function () {
          if (lastMutation < now && lastNav < now) push("dead_click", { text: text }, { selector: sel, x: x, y: y });
        }), 1000);
      }
    }), true);
    if (w.MutationObserver) {
      new MutationObserver(function () { lastMutation = Date.now(); })
        .observe(d.documentElement, { childList: true, subtree: true, attributes: true, characterData: true });
    }
    w.addEventListener("scroll", safe(function () {
      var h = Math.max(d.documentElement.scrollHeight, 1);
      var depth = Math.min(100, Math.round(((w.scrollY || 0) + w.innerHeight) / h * 100));
      if (depth > maxDepth) maxDepth = depth;
    }), { passive: true });
    // The top frames of an error's stack (issue grouping), without query strings (tokens), bounded.
    var stackOf = function (err) {
      var s = err && err.stack;
      if (typeof s !== "string") return undefined;
      return s.split("\n").slice(0, 12).map(function (l) { return l.replace(/\?[^\s):]*/g, "").trim().slice(0, 300); })
        .join("\n").slice(0, 2000);
    };
    w.addEventListener("error", safe(function (ev) {
      if (errors++ >= 20 || !ev || ev.target !== w) return;
      push("error", { message: cut(ev.message, 500), source: cut(ev.filename, 500).split("?")[0], line: ev.lineno | 0,
        col: ev.colno | 0, stack: stackOf(ev.error) });
    }));
    w.addEventListener("unhandledrejection", safe(function (ev) {
      if (errors++ >= 20) return;
      var r = ev && ev.reason;
      push("error", { message: cut((r && r.message) || r, 500), kind: "unhandledrejection", stack: stackOf(r) });
    }));
    d.addEventListener("submit", safe(function (ev) {
      var f = ev.target;
      if (!f || f.tagName !== "FORM") return;
      var action = cut(f.getAttribute("action") || location.pathname, 300).split("?")[0];
      push("form_submit", { action: action, method: cut(f.method, 10), fields: f.elements ? f.elements.length : 0 },
        { selector: selector(f) });
    }), true);
    var leave = safe(function () { lastNav = Date.now(); scrollEvent(); flush(true); });
    w.addEventListener("pagehide", leave);
    d.addEventListener("visibilitychange", safe(function () { if (d.visibilityState === "hidden") { scrollEvent(); flush(true); } }));
    setInterval(safe(function () { scrollEvent(); flush(false); }), every);

    // ---- the page's API ----
    S.identify = safe(function (who) {
      if (!who || typeof who !== "object") return;
      var email = who.email ? cut(who.email, 254).toLowerCase() : null;
      customer = { email: email, id: who.id != null ? cut(who.id, 128) : null, name: who.name ? cut(who.name, 200) : null };
      var cid = customer.id || email;
      if (cid) callClarity(["identify", cid, null, null, customer.name || undefined]);
      setTimeout(safe(function () { flush(false); }), 0);
    });
    S.consent = safe(function (yes) {
      consent = !!yes;
      if (consent) flush(false); else drop();
    });
    S.track = safe(function (name, data) {
      var clean = { name: cut(name, 100) };
      if (data && typeof data === "object") {
        for (var k in data) {
          var v = data[k];
          if (Object.keys(clean).length < 20 && (v === null || /^(string|number|boolean)$/.test(typeof v)))
            clean[cut(k, 40)] = typeof v === "string" ? cut(v, 500) : v;
        }
      }
      push("custom", clean);
    });
    S.flush = safe(function () { flush(false); });
    S.stop = safe(function () { stopped = true; drop(); });

    push("navigation", { from: cut(d.referrer, 2048), how: "load" });
    readIds();
    var tries = 0;
    var wait = setInterval(safe(function () {
      if ((clarity() && ids) || ++tries > 120) clearInterval(wait);
      readIds();
      if (ids && tries < 3) flush(false);
    }), 500);
  } catch (e) {
    /* never break the host page */
  }
})(window, document);
