/* The dispatcher's console (docs/console.md). Signs in with the OAuth2 password flow, keeps the bearer token in
   sessionStorage (gone when the tab closes) and reads everything from the role-checked JSON API. The board is
   polled with If-None-Match (304 while nothing changed). Every value from the API is put in the page with
   textContent, never as HTML. */
(function () {
  "use strict";

  var TOKEN_KEY = "truckroll.reports.console.token";
  var POLL_MS = 3000;
  var body = document.body;
  var view = body.dataset.view;
  var companyTz = body.dataset.companyTimezone || "UTC";
  var state = { token: sessionStorage.getItem(TOKEN_KEY), etag: null, data: null, timer: null, map: null,
                layers: null, openJob: null, lastReopt: null };
  var COLOURS = ["#1d4ed8", "#b91c1c", "#15803d", "#7e22ce", "#c2410c", "#0e7490", "#a16207", "#be185d",
                 "#4338ca", "#047857"];

  function $(id) { return document.getElementById(id); }
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "class") { e.className = attrs[k]; } else if (k.indexOf("data-") === 0 || k.indexOf("aria-") === 0 ||
          k === "role" || k === "for" || k === "scope" || k === "href" || k === "type" || k === "id" ||
          k === "value" || k === "title" || k === "tabindex") { e.setAttribute(k, attrs[k]); } else { e[k] = attrs[k]; }
    });
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }
  function clear(node) { while (node.firstChild) { node.removeChild(node.firstChild); } }
  function tz() { return (state.data && state.data.timezone) || companyTz; }
  function clock(iso, zone) {
    if (!iso) { return ""; }
    return new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit", timeZone: zone || tz() })
      .format(new Date(iso));
  }
  function stamp(iso, zone) {
    if (!iso) { return ""; }
    return new Intl.DateTimeFormat("en-GB", { weekday: "short", day: "2-digit", month: "short", hour: "2-digit",
      minute: "2-digit", second: "2-digit", timeZone: zone || tz() }).format(new Date(iso));
  }
  function mins(m) { return Math.round(m) + " min"; }
  function pct(x) { return Math.round(x * 100) + "%"; }
  function flash(text, isError) {
    var f = $("flash");
    f.textContent = text;
    f.className = isError ? "flash error" : "flash ok";
  }

  // ------------------------------------------------------------------ API and sign-in

  function api(path, opts) {
    opts = opts || {};
    var headers = opts.headers || {};
    if (state.token) { headers.Authorization = "Bearer " + state.token; }
    if (opts.json !== undefined) { headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(opts.json); }
    return fetch(path, { method: opts.method || "GET", headers: headers, body: opts.body, cache: "no-store" })
      .then(function (r) {
        if (r.status === 401) { signOut("Your session ended: sign in again."); throw new Error("signed out"); }
        return r;
      });
  }
  // The answer's JSON, or {detail: its text} when it is not JSON (a proxy's error page, a crash).
  function answer(r) {
    return r.text().then(function (t) {
      var j;
      try { j = JSON.parse(t); } catch (e) { j = { detail: "HTTP " + r.status + (t ? ": " + t.slice(0, 200) : "") }; }
      return { r: r, j: j };
    });
  }
  function detailText(detail) {
    if (typeof detail === "string") { return detail; }
    if (Array.isArray(detail)) { return detail.map(function (d) { return (d.field ? d.field + ": " : "") + (d.message || d.msg || JSON.stringify(d)); }).join("; "); }
    if (detail && detail.message) { return detail.message + (detail.reasons ? ": " + detail.reasons.join("; ") : ""); }
    return JSON.stringify(detail);
  }

  function showLogin(message) {
    $("login").hidden = false; $("app").hidden = true; $("nav").hidden = true; $("who").hidden = true;
    $("login-error").textContent = message || "";
    $("username").focus();
  }
  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    state.token = null; state.etag = null; state.data = null;
    if (state.timer) { clearTimeout(state.timer); state.timer = null; }
    showLogin(message);
  }
  function start() {
    api("/auth/me").then(function (r) { return r.json(); }).then(function (me) {
      if (me.role !== "dispatcher" && me.role !== "admin") {
        signOut("The console is for dispatchers: " + me.name + " is " + me.role + ".");
        return;
      }
      $("login").hidden = true; $("app").hidden = false; $("nav").hidden = false; $("who").hidden = false;
      $("who-name").textContent = me.name + " (" + me.role + ")";
      if (view === "request") { pollTimeline(); } else { initBoard(); }
    }).catch(function () {});
  }
  $("login-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var form = new URLSearchParams();
    form.set("username", $("username").value);
    form.set("password", $("password").value);
    fetch("/auth/token", { method: "POST", body: form }).then(answer).then(function (res) {
      if (!res.r.ok) { $("login-error").textContent = detailText(res.j.detail); return; }
      state.token = res.j.access_token;
      sessionStorage.setItem(TOKEN_KEY, state.token);
      $("password").value = "";
      start();
    }).catch(function () { $("login-error").textContent = "The service cannot be reached."; });
  });
  $("sign-out").addEventListener("click", function () { signOut("Signed out."); });

  // ------------------------------------------------------------------ the board

  function isoDay(d) { return d.toISOString().slice(0, 10); }
  function initBoard() {
    var params = new URLSearchParams(location.search);
    $("day").value = params.get("date") || new Intl.DateTimeFormat("en-CA", { timeZone: companyTz }).format(new Date());
    if (params.get("territory")) { state.territory = params.get("territory"); }
    function shift(n) {
      var d = new Date($("day").value + "T12:00:00Z"); d.setUTCDate(d.getUTCDate() + n);
      $("day").value = isoDay(d); changed();
    }
    $("prev-day").addEventListener("click", function () { shift(-1); });
    $("next-day").addEventListener("click", function () { shift(1); });
    $("today").addEventListener("click", function () {
      $("day").value = new Intl.DateTimeFormat("en-CA", { timeZone: companyTz }).format(new Date()); changed();
    });
    $("day").addEventListener("change", changed);
    $("territory").addEventListener("change", changed);
    $("toolbar").addEventListener("submit", function (ev) { ev.preventDefault(); changed(); });
    $("job-close").addEventListener("click", closeJob);
    $("reassign-form").addEventListener("submit", submitReassign);
    $("reopt-dry").addEventListener("click", function () { reoptimize(true); });
    $("reopt-apply").addEventListener("click", function () { reoptimize(false); });
    poll();
  }
  function changed() {
    var params = new URLSearchParams();
    params.set("date", $("day").value);
    if ($("territory").value) { params.set("territory", $("territory").value); }
    history.replaceState(null, "", "/console?" + params.toString() + location.hash);
    state.etag = null; state.lastReopt = null; $("reopt-apply").disabled = true; clear($("reopt-result"));
    poll();
  }
  function boardUrl() {
    var q = "date=" + encodeURIComponent($("day").value);
    var t = $("territory").value || state.territory;
    if (t) { q += "&territory_id=" + encodeURIComponent(t); }
    return "/console/api/board?" + q;
  }
  function poll() {
    if (state.timer) { clearTimeout(state.timer); state.timer = null; }
    if (!state.token || !$("day").value) { return; }
    var headers = state.etag ? { "If-None-Match": state.etag } : {};
    api(boardUrl(), { headers: headers }).then(function (r) {
      if (r.status === 304) { return null; }
      if (!r.ok) { return answer(r).then(function (res) { throw new Error(detailText(res.j.detail)); }); }
      state.etag = r.headers.get("ETag");
      return r.json();
    }).then(function (data) {
      if (data) { state.data = data; render(data); }
      $("live").textContent = "Live: up to date at " + clock(new Date().toISOString()) + " (" + tz() + ")";
    }).catch(function (e) {
      if (e.message !== "signed out") { $("live").textContent = "Could not refresh: " + e.message; }
    }).then(function () {
      if (state.token) { state.timer = setTimeout(poll, POLL_MS); }
    });
  }
  function refreshNow() { state.etag = null; poll(); }

  function render(data) {
    var zone = data.timezone;
    Array.prototype.forEach.call(document.querySelectorAll(".tz-name"), function (n) { n.textContent = zone; });
    $("tz").textContent = "Times in " + zone;
    renderTerritories(data);
    renderRows(data);
    renderWaiting(data);
    renderMap(data);
    renderEscalations(data);
    renderMetrics(data);
  }

  function renderTerritories(data) {
    var sel = $("territory");
    var want = state.territory || sel.value;
    if (sel.options.length - 1 !== data.territories.length) {
      while (sel.options.length > 1) { sel.remove(1); }
      data.territories.forEach(function (t) {
        sel.appendChild(el("option", { value: String(t.id) }, t.name + " (" + t.timezone + ")"));
      });
    }
    if (want) { sel.value = String(want); state.territory = null; }
  }

  function colourOf(i) { return COLOURS[i % COLOURS.length]; }

  function renderRows(data) {
    var tbody = document.querySelector("#board-table tbody");
    clear(tbody);
    if (!data.rows.length) {
      var tr0 = el("tr"); tr0.appendChild(el("td", { colSpan: 7 }, "No technician on shift this day."));
      tbody.appendChild(tr0); return;
    }
    var t0 = Infinity, t1 = -Infinity;
    data.rows.forEach(function (r) {
      t0 = Math.min(t0, Date.parse(r.shift_start));
      t1 = Math.max(t1, Date.parse(r.shift_end));
      r.jobs.forEach(function (j) { t0 = Math.min(t0, Date.parse(j.window_start), Date.parse(j.start));
        t1 = Math.max(t1, Date.parse(j.end) + r.return_minutes * 60000, Date.parse(j.window_end)); });
    });
    var hour = 3600000; t0 = Math.floor(t0 / hour) * hour; t1 = Math.ceil(t1 / hour) * hour;
    function x(ms) { return ((ms - t0) / (t1 - t0) * 100).toFixed(3) + "%"; }
    function w(a, b) { return Math.max(0.4, (b - a) / (t1 - t0) * 100).toFixed(3) + "%"; }
    data.rows.forEach(function (r, i) {
      var c = colourOf(i);
      var tr = el("tr", { id: "row-tech-" + r.technician_id, "data-technician-id": String(r.technician_id) });
      var th = el("th", { scope: "row" });
      th.appendChild(el("span", { class: "swatch", "aria-hidden": "true" })).style.background = c;
      th.appendChild(document.createTextNode(r.name));
      th.appendChild(el("small", {}, (r.territory || "no territory") + " · " + clock(r.shift_start, data.timezone) +
        "-" + clock(r.shift_end, data.timezone)));
      tr.appendChild(th);
      var cell = el("td", { class: "gantt-cell" });
      var g = el("div", { class: "gantt", role: "group", "aria-label": r.name + "'s day" });
      for (var h = t0; h < t1; h += hour) {
        var tick = el("span", { class: "tick", "aria-hidden": "true" }, clock(new Date(h).toISOString(), data.timezone));
        tick.style.left = x(h); g.appendChild(tick);
      }
      var band = el("span", { class: "shift", title: "shift " + clock(r.shift_start, data.timezone) + "-" +
        clock(r.shift_end, data.timezone) + ", idle " + mins(r.idle_minutes) });
      band.style.left = x(Date.parse(r.shift_start)); band.style.width = w(Date.parse(r.shift_start), Date.parse(r.shift_end));
      g.appendChild(band);
      var prevEnd = Date.parse(r.shift_start);
      r.jobs.forEach(function (j) {
        var s = Date.parse(j.start), e = Date.parse(j.end);
        if (j.travel_minutes > 0) {
          var leave = Math.max(prevEnd, s - j.travel_minutes * 60000);
          var tb = el("span", { class: "travel", title: "travel " + mins(j.travel_minutes) + " to #" + j.request_id });
          tb.style.left = x(leave); tb.style.width = w(leave, s); g.appendChild(tb);
        }
        var win = el("span", { class: "window", title: "#" + j.request_id + ": window promised " +
          clock(j.window_start, data.timezone) + "-" + clock(j.window_end, data.timezone) });
        win.style.left = x(Date.parse(j.window_start)); win.style.width = w(Date.parse(j.window_start), Date.parse(j.window_end));
        win.style.background = c; g.appendChild(win);
        var b = el("button", { type: "button", class: "job state-" + j.state, "data-request": String(j.request_id),
          "aria-label": "Request " + j.request_id + ", " + j.job_type + " for " + j.customer_name + ", " +
            clock(j.start, data.timezone) + " to " + clock(j.end, data.timezone) + ", window " +
            clock(j.window_start, data.timezone) + " to " + clock(j.window_end, data.timezone) + ", " + j.state.replace("_", " ") },
          "#" + j.request_id);
        b.style.left = x(s); b.style.width = w(s, e); b.style.background = c;
        b.addEventListener("click", function () { openJob(j, r); });
        g.appendChild(b);
        prevEnd = e;
      });
      if (r.jobs.length && r.return_minutes > 0) {
        var last = Date.parse(r.jobs[r.jobs.length - 1].end);
        var rb = el("span", { class: "travel", title: "travel home " + mins(r.return_minutes) });
        rb.style.left = x(last); rb.style.width = w(last, last + r.return_minutes * 60000); g.appendChild(rb);
      }
      cell.appendChild(g);
      tr.appendChild(cell);
      var jobsCell = el("td", { class: "jobs" });
      if (!r.jobs.length) { jobsCell.textContent = "none"; }
      var ul = el("ul", { class: "plain" });
      r.jobs.forEach(function (j) {
        var li = el("li", { "data-request": String(j.request_id) });
        li.appendChild(el("a", { href: "/console/requests/" + j.request_id }, "#" + j.request_id));
        var full = " " + clock(j.start, data.timezone) + " " + j.job_type + ", " + j.customer_name + " (window " +
          clock(j.window_start, data.timezone) + "-" + clock(j.window_end, data.timezone) +
          (j.state !== "planned" ? ", " + j.state.replace("_", " ") : "") + ")";
        li.title = "#" + j.request_id + full;
        li.appendChild(document.createTextNode(full));
        ul.appendChild(li);
      });
      if (r.jobs.length) { jobsCell.appendChild(ul); }
      tr.appendChild(jobsCell);
      tr.appendChild(el("td", { class: "num" }, mins(r.travel_minutes)));
      tr.appendChild(el("td", { class: "num" }, mins(r.idle_minutes)));
      var u = el("td", { class: "num" + (r.over_target ? " over" : "") },
        pct(r.utilisation) + " (" + pct(r.utilisation_target) + ")" + (r.over_target ? " over target" : ""));
      tr.appendChild(u);
      tr.appendChild(el("td", { class: "live-state" }, r.live_state + (r.position && r.position.label !== "home" ? "" : "")));
      tbody.appendChild(tr);
    });
  }

  function renderWaiting(data) {
    var ul = $("waiting");
    clear(ul);
    if (!data.waiting.length) { ul.appendChild(el("li", {}, "Nothing waiting: every request of the day is placed or escalated.")); return; }
    data.waiting.forEach(function (w) {
      var li = el("li", { "data-request": String(w.request_id) });
      li.appendChild(el("a", { href: "/console/requests/" + w.request_id }, "#" + w.request_id));
      li.appendChild(document.createTextNode(" " + w.job_type + " for " + w.customer_name + ", P" + w.priority + ", " +
        w.status + " at " + clock(w.received_at)));
      ul.appendChild(li);
    });
  }

  // ------------------------------------------------------------------ a job: details and reassignment

  function openJob(j, r) {
    state.openJob = { job: j, row: r };
    $("job-title").textContent = "Request #" + j.request_id + ": " + j.job_type + " with " + r.name;
    var dl = $("job-facts"); clear(dl);
    [["Customer", j.customer_name], ["Address", j.address],
     ["Planned", clock(j.start) + "-" + clock(j.end) + " (" + tz() + ")"],
     ["Window promised", clock(j.window_start) + "-" + clock(j.window_end)],
     ["Travel in", mins(j.travel_minutes)], ["Live", j.state.replace("_", " ") + (j.eta ? ", ETA " + clock(j.eta) : "")]]
      .forEach(function (p) { dl.appendChild(el("dt", {}, p[0])); dl.appendChild(el("dd", {}, p[1])); });
    $("job-link").href = "/console/requests/" + j.request_id;
    var sel = $("reassign-tech"); clear(sel);
    state.data.rows.forEach(function (o) {
      if (o.technician_id !== r.technician_id) {
        sel.appendChild(el("option", { value: String(o.technician_id) }, o.name + " (" + pct(o.utilisation) + " busy)"));
      }
    });
    $("reassign-submit").disabled = !sel.options.length;
    $("reassign-overrides").hidden = true; clear($("reassign-rules")); $("reassign-reason").value = "";
    $("reassign-submit").textContent = "Reassign";
    $("job-panel").hidden = false; $("job-panel").focus();
  }
  function closeJob() {
    var j = state.openJob; state.openJob = null; $("job-panel").hidden = true;
    if (j) { var b = document.querySelector('#board-table button.job[data-request="' + j.job.request_id + '"]'); if (b) { b.focus(); } }
  }
  function checkedRules(container) {
    return Array.prototype.map.call(container.querySelectorAll("input[type=checkbox]:checked"), function (c) { return c.value; });
  }
  function ruleBoxes(container, rules, prefix) {
    clear(container);
    rules.forEach(function (rule) {
      var id = prefix + "-" + rule;
      var box = el("input", { type: "checkbox", id: id, value: rule });
      container.appendChild(box);
      container.appendChild(el("label", { for: id }, "Override " + rule.replace("_", " ")));
      container.appendChild(document.createTextNode(" "));
    });
  }
  function submitReassign(ev) {
    ev.preventDefault();
    var open = state.openJob; if (!open) { return; }
    var payload = { technician_id: Number($("reassign-tech").value), overrides: checkedRules($("reassign-rules")),
                    override_reason: $("reassign-reason").value };
    api("/console/api/requests/" + open.job.request_id + "/reassign", { method: "POST", json: payload })
      .then(answer)
      .then(function (res) {
        if (res.r.ok) {
          flash("Request #" + res.j.request_id + " moved to " + res.j.technician_name + ": " + clock(res.j.scheduled_start) +
            ", window " + clock(res.j.arrival_window_start) + "-" + clock(res.j.arrival_window_end) + ".");
          closeJob(); refreshNow(); return;
        }
        var d = res.j.detail;
        if (res.r.status === 409 && d && d.reasons) {
          $("reassign-overrides").hidden = false;
          $("reassign-reasons").textContent = "Refused: " + d.reasons.join("; ") +
            (d.overridable.length ? ". You may override with a reason:" : ". No override can lift this.");
          ruleBoxes($("reassign-rules"), d.overridable, "reassign-rule");
          $("reassign-submit").textContent = d.overridable.length ? "Override and reassign" : "Reassign";
          $("reassign-reasons").focus && $("reassign-reasons").setAttribute("tabindex", "-1");
          return;
        }
        flash(detailText(d), true);
      });
  }

  // ------------------------------------------------------------------ the map

  function mapItems(data) {
    return data.rows.map(function (r, i) {
      return { row: r, colour: colourOf(i),
               path: [[r.home.lat, r.home.lon]].concat(r.jobs.map(function (j) { return [j.lat, j.lon]; }))
                 .concat(r.jobs.length ? [[r.home.lat, r.home.lon]] : []) };
    });
  }
  function polygonsOf(t) {
    var g = t.geometry || {};
    if (g.type === "Polygon") { return [g.coordinates]; }
    if (g.type === "MultiPolygon") { return g.coordinates; }
    return [];
  }
  function renderMap(data) {
    var items = mapItems(data);
    var legend = $("map-legend"); clear(legend);
    items.forEach(function (it) {
      var li = el("li", { "data-technician-id": String(it.row.technician_id) });
      li.appendChild(el("span", { class: "swatch", "aria-hidden": "true" })).style.background = it.colour;
      li.appendChild(document.createTextNode(it.row.name + ": " + it.row.jobs.length + " jobs, now " +
        it.row.position.label));
      legend.appendChild(li);
    });
    var tiles = body.dataset.tileUrl;
    if (window.L && body.dataset.leaflet === "yes") {
      $("map-note").textContent = tiles ? "Streets from the configured tile server. Squares: homes; circles: jobs in visiting order; large rings: where each technician is now."
        : "No tile server configured (TRUCKROLL_TILE_URL): routes, stops, positions and territories on a plain background.";
      drawLeaflet(data, items, tiles);
    } else {
      $("map-note").textContent = "Leaflet is not installed here (run make vendor): a plain drawing of routes, stops, positions and territories.";
      drawSvg(data, items);
    }
  }
  function drawLeaflet(data, items, tiles) {
    var L = window.L;
    if (!state.map) {
      state.map = L.map("map", { keyboard: true });
      if (tiles) { L.tileLayer(tiles, { maxZoom: 19, attribution: body.dataset.tileAttribution || "" }).addTo(state.map); }
      else { $("map").classList.add("blank"); }
      state.layers = L.layerGroup().addTo(state.map);
    }
    state.layers.clearLayers();
    var bounds = [];
    data.territories.forEach(function (t) {
      polygonsOf(t).forEach(function (poly) {
        var rings = poly.map(function (ring) { return ring.map(function (p) { return [p[1], p[0]]; }); });
        L.polygon(rings, { color: "#475569", weight: 1, fillOpacity: 0.06, dashArray: "4 3" })
          .bindTooltip(t.name).addTo(state.layers);
        rings[0].forEach(function (p) { bounds.push(p); });
      });
    });
    items.forEach(function (it) {
      L.polyline(it.path, { color: it.colour, weight: 3, opacity: 0.85 }).bindTooltip(it.row.name).addTo(state.layers);
      L.marker([it.row.home.lat, it.row.home.lon], { icon: L.divIcon({ className: "home-icon", html: "", iconSize: [10, 10] }),
        title: it.row.name + " (home)", keyboard: false }).addTo(state.layers);
      it.row.jobs.forEach(function (j, n) {
        L.circleMarker([j.lat, j.lon], { radius: 7, color: it.colour, fillColor: it.colour, fillOpacity: 0.9 })
          .bindTooltip("#" + j.request_id + " (" + (n + 1) + ") " + j.job_type + ", " + clock(j.start)).addTo(state.layers);
      });
      L.circleMarker([it.row.position.lat, it.row.position.lon], { radius: 12, color: it.colour, weight: 3, fill: false })
        .bindTooltip(it.row.name + ": " + it.row.position.label).addTo(state.layers);
      it.path.forEach(function (p) { bounds.push(p); });
    });
    if (bounds.length && !state.mapFitted) { state.map.fitBounds(bounds, { padding: [20, 20] }); state.mapFitted = true; }
    if (!bounds.length && !state.mapFitted) { state.map.setView([32.8, -96.8], 9); }
  }
  function drawSvg(data, items) {
    var NS = "http://www.w3.org/2000/svg", W = 900, H = 520, pad = 24;
    var pts = [];
    items.forEach(function (it) { it.path.forEach(function (p) { pts.push(p); }); });
    data.territories.forEach(function (t) { polygonsOf(t).forEach(function (poly) { poly[0].forEach(function (p) { pts.push([p[1], p[0]]); }); }); });
    var box = $("map"); clear(box);
    if (!pts.length) { box.appendChild(el("p", { class: "note" }, "Nothing to draw for this day.")); return; }
    var lat0 = pts.reduce(function (s, p) { return s + p[0]; }, 0) / pts.length, kx = Math.cos(lat0 * Math.PI / 180);
    var xs = pts.map(function (p) { return p[1] * kx; }), ys = pts.map(function (p) { return p[0]; });
    var minx = Math.min.apply(null, xs), miny = Math.min.apply(null, ys);
    var span = Math.max(Math.max.apply(null, xs) - minx, Math.max.apply(null, ys) - miny, 1e-3);
    var sc = Math.min(W - 2 * pad, H - 2 * pad) / span;
    function xy(p) { return [pad + (p[1] * kx - minx) * sc, H - pad - (p[0] - miny) * sc]; }
    function node(tag, attrs, title) {
      var n = document.createElementNS(NS, tag);
      Object.keys(attrs).forEach(function (k) { n.setAttribute(k, attrs[k]); });
      if (title) { var t = document.createElementNS(NS, "title"); t.textContent = title; n.appendChild(t); }
      return n;
    }
    var svg = node("svg", { viewBox: "0 0 " + W + " " + H, width: "100%", class: "plain-map" });
    data.territories.forEach(function (t) {
      polygonsOf(t).forEach(function (poly) {
        svg.appendChild(node("polygon", { points: poly[0].map(function (p) { return xy([p[1], p[0]]).join(","); }).join(" "),
          fill: "#64748b", "fill-opacity": "0.06", stroke: "#475569", "stroke-dasharray": "4 3" }, t.name));
      });
    });
    items.forEach(function (it) {
      svg.appendChild(node("polyline", { points: it.path.map(function (p) { return xy(p).join(","); }).join(" "),
        fill: "none", stroke: it.colour, "stroke-width": "2.5" }, it.row.name));
      var h = xy([it.row.home.lat, it.row.home.lon]);
      svg.appendChild(node("rect", { x: h[0] - 5, y: h[1] - 5, width: 10, height: 10, fill: "#fff", stroke: it.colour }, it.row.name + " (home)"));
      it.row.jobs.forEach(function (j) {
        var q = xy([j.lat, j.lon]);
        svg.appendChild(node("circle", { cx: q[0], cy: q[1], r: 7, fill: it.colour, class: "stop", "data-request": String(j.request_id) },
          "#" + j.request_id + " " + j.job_type + ", " + clock(j.start)));
      });
      var pos = xy([it.row.position.lat, it.row.position.lon]);
      svg.appendChild(node("circle", { cx: pos[0], cy: pos[1], r: 12, fill: "none", stroke: it.colour, "stroke-width": 3,
        class: "position" }, it.row.name + ": " + it.row.position.label));
    });
    box.appendChild(svg);
  }

  // ------------------------------------------------------------------ escalations

  function renderEscalations(data) {
    $("esc-count").textContent = String(data.escalations.length);
    var ul = $("esc-list");
    var keep = {};
    data.escalations.forEach(function (e) { keep[e.escalation_id] = e; });
    Array.prototype.forEach.call(ul.querySelectorAll("li.esc"), function (li) {
      if (!keep[li.dataset.escalation]) { ul.removeChild(li); }
    });
    var empty = ul.querySelector("li.empty");
    if (empty) { ul.removeChild(empty); }
    if (!data.escalations.length) { ul.appendChild(el("li", { class: "empty" }, "No open escalation.")); return; }
    data.escalations.forEach(function (e) {
      if (ul.querySelector('li.esc[data-escalation="' + e.escalation_id + '"]')) { return; }
      var li = el("li", { class: "esc", "data-escalation": String(e.escalation_id), "data-request": String(e.request_id) });
      var h = el("h3", {});
      h.appendChild(el("a", { href: "/console/requests/" + e.request_id }, "#" + e.request_id));
      h.appendChild(document.createTextNode(" " + e.job_type + " for " + e.customer_name + " (P" + e.priority + ")"));
      li.appendChild(h);
      li.appendChild(el("p", {}, e.reason + " · " + e.address + " · windows " + e.time_windows.map(function (w) {
        return stamp(w.start).replace(/:\d\d$/, "") + "-" + clock(w.end); }).join(", ")));
      var btn = el("button", { type: "button", class: "show-candidates", "aria-expanded": "false",
        "aria-controls": "cand-" + e.escalation_id }, "Show candidates for #" + e.request_id);
      var panel = el("div", { id: "cand-" + e.escalation_id, class: "candidates", hidden: true });
      btn.addEventListener("click", function () {
        var open = btn.getAttribute("aria-expanded") === "true";
        btn.setAttribute("aria-expanded", open ? "false" : "true");
        btn.textContent = (open ? "Show" : "Hide") + " candidates for #" + e.request_id;
        panel.hidden = open;
        if (!open) { loadRanking(e, panel); }
      });
      li.appendChild(btn); li.appendChild(panel);
      ul.appendChild(li);
    });
  }
  function loadRanking(e, panel) {
    clear(panel); panel.appendChild(el("p", { class: "note" }, "Ranking the technicians…"));
    api("/console/api/escalations/" + e.escalation_id + "/ranking").then(answer).then(function (res) {
      clear(panel);
      if (!res.r.ok) { panel.appendChild(el("p", { class: "error" }, detailText(res.j.detail))); return; }
      var table = el("table", { class: "ranking" });
      table.appendChild(el("caption", {}, "Technicians for request #" + e.request_id + ", best first"));
      var head = el("tr");
      ["Technician", "Could take it", "Score", "Why (not)", "Action"].forEach(function (c) { head.appendChild(el("th", { scope: "col" }, c)); });
      table.appendChild(el("thead")).appendChild(head);
      var tb = el("tbody");
      res.j.candidates.forEach(function (c) {
        var tr = el("tr", { "data-technician-id": String(c.technician_id) });
        tr.appendChild(el("th", { scope: "row" }, c.technician));
        tr.appendChild(el("td", {}, c.chosen ? "yes, would get it" : c.eligible ? "yes" : "no"));
        tr.appendChild(el("td", { class: "num" }, c.score === null ? "" : c.score.toFixed(3)));
        tr.appendChild(el("td", {}, c.reasons.join("; ") || "—"));
        var td = el("td");
        var b = el("button", { type: "button", class: "assign", "data-technician-id": String(c.technician_id) },
          "Assign to " + c.technician);
        b.addEventListener("click", function () { resolve(e, c, panel, [], ""); });
        td.appendChild(b); tr.appendChild(td); tb.appendChild(tr);
      });
      table.appendChild(tb);
      panel.appendChild(table);
      panel.appendChild(el("div", { class: "resolve-result", role: "status" }));
    });
  }
  function resolve(e, c, panel, overrides, reason) {
    var out = panel.querySelector(".resolve-result");
    var payload = { technician_id: c.technician_id };
    if (overrides.length) { payload.overrides = overrides; payload.override_reason = reason; }
    api("/escalations/" + e.escalation_id + "/resolve", { method: "POST", json: payload }).then(answer).then(function (res) {
      clear(out);
      if (res.r.ok) {
        flash("Escalation of #" + e.request_id + " resolved: " + res.j.technician_name + " at " +
          clock(res.j.scheduled_start) + ", window " + clock(res.j.arrival_window.start) + "-" + clock(res.j.arrival_window.end) + ".");
        refreshNow(); return;
      }
      var d = res.j.detail;
      if (res.r.status === 409 && d && d.reasons) {
        var form = el("form", { class: "override-form", "aria-label": "Override for " + c.technician });
        form.appendChild(el("p", { class: "error" }, c.technician + " cannot take it: " + d.reasons.join("; ")));
        if (!d.overridable.length) { form.appendChild(el("p", {}, "No override can lift this rule.")); out.appendChild(form); return; }
        var rules = el("div"); ruleBoxes(rules, d.overridable, "esc" + e.escalation_id + "-rule");
        Array.prototype.forEach.call(rules.querySelectorAll("input"), function (i) { i.checked = true; });
        form.appendChild(rules);
        var rid = "esc" + e.escalation_id + "-reason";
        form.appendChild(el("label", { for: rid }, "Reason for the override"));
        var input = el("input", { id: rid, class: "override-reason", size: "50" });
        input.required = true;
        form.appendChild(input);
        form.appendChild(el("button", { type: "submit", class: "override-submit" }, "Override and assign to " + c.technician));
        form.addEventListener("submit", function (ev) {
          ev.preventDefault();
          resolve(e, c, panel, checkedRules(rules), input.value);
        });
        out.appendChild(form); input.focus();
        return;
      }
      out.appendChild(el("p", { class: "error" }, detailText(d)));
    });
  }

  // ------------------------------------------------------------------ metrics and re-optimisation

  function metricText(name, v) {
    if (name.indexOf("utilisation") >= 0) { return pct(v); }
    if (name === "revenue") { return "$" + Math.round(v).toLocaleString("en-US"); }
    if (name === "technicians" || name === "jobs" || name === "escalations") { return String(Math.round(v)); }
    return (Math.round(v * 10) / 10).toString();
  }
  function renderMetrics(data) {
    var tb = document.querySelector("#metrics-table tbody"); clear(tb);
    Object.keys(data.metrics).forEach(function (k) {
      var tr = el("tr", { "data-metric": k });
      tr.appendChild(el("th", { scope: "row" }, k.replace(/_/g, " ")));
      tr.appendChild(el("td", { class: "num" }, metricText(k, data.metrics[k])));
      tb.appendChild(tr);
    });
  }
  function reoptimize(dry) {
    var out = $("reopt-result"); clear(out);
    out.appendChild(el("p", { class: "note" }, dry ? "Comparing (dry run)…" : "Re-optimising…"));
    $("reopt-dry").disabled = true; $("reopt-apply").disabled = true;
    api("/reoptimize", { method: "POST", json: { date: $("day").value, horizon_days: 1, dry_run: dry } })
      .then(answer)
      .then(function (res) {
        clear(out);
        $("reopt-dry").disabled = false;
        if (!res.r.ok) { out.appendChild(el("p", { class: "error" }, detailText(res.j.detail))); return; }
        var j = res.j;
        out.appendChild(el("p", {}, j.outcome || j.message));
        var keys = Object.keys(j.before || {});
        if (keys.length) {
          var t = el("table", { class: "reopt" });
          t.appendChild(el("caption", {}, "Before and after"));
          var h = el("tr"); ["Measure", "Before", "After"].forEach(function (c) { h.appendChild(el("th", { scope: "col" }, c)); });
          t.appendChild(el("thead")).appendChild(h);
          var tb = el("tbody");
          keys.forEach(function (k) {
            var tr = el("tr");
            tr.appendChild(el("th", { scope: "row" }, k.replace(/_/g, " ")));
            [j.before[k], (j.after || {})[k]].forEach(function (v) {
              tr.appendChild(el("td", { class: "num" }, typeof v === "number" ? metricText(k, v) : JSON.stringify(v)));
            });
            tb.appendChild(tr);
          });
          t.appendChild(tb); out.appendChild(t);
        }
        if (dry) { state.lastReopt = j; $("reopt-apply").disabled = false; } else { refreshNow(); }
      }).catch(function (e) {
        $("reopt-dry").disabled = false; clear(out);
        out.appendChild(el("p", { class: "error" }, "The re-optimisation did not answer: " + e.message));
      });
  }

  // ------------------------------------------------------------------ a request's page

  function pollTimeline() {
    var id = body.dataset.requestId;
    api("/console/api/requests/" + id + "/timeline").then(answer).then(function (res) {
      if (!res.r.ok) { flash(detailText(res.j.detail), true); return; }
      renderTimeline(res.j);
      $("live").textContent = "Live: up to date at " + clock(new Date().toISOString(), companyTz) + " (" + companyTz + ")";
    }).catch(function () {}).then(function () {
      if (state.token) { state.timer = setTimeout(pollTimeline, POLL_MS); }
    });
  }
  function renderTimeline(t) {
    var s = $("request-summary"); clear(s);
    var dl = el("dl");
    [["Status", t.status], ["Customer", t.customer_name], ["Address", t.address], ["Job", t.job_type + ", priority " + t.priority],
     ["Technician", t.technician_name || "none"],
     ["Arrival window", t.arrival_window ? clock(t.arrival_window.start, companyTz) + "-" + clock(t.arrival_window.end, companyTz) + " (" + companyTz + ")" : "none"]]
      .forEach(function (p) { dl.appendChild(el("dt", {}, p[0])); dl.appendChild(el("dd", {}, p[1])); });
    s.appendChild(dl);
    var runs = $("flow-runs"); clear(runs);
    if (!t.flow_runs.length) {
      runs.appendChild(el("li", {}, "No Prefect flow run recorded (dispatched in-process, or not yet)."));
    }
    t.flow_runs.forEach(function (r) {
      var li = el("li");
      var label = (r.name || "flow run " + r.id) + (r.state ? " (" + r.state + ")" : "");
      if (r.url) { li.appendChild(el("a", { href: r.url, class: "flow-run" }, label)); }
      else { li.appendChild(document.createTextNode(label + ": set TRUCKROLL_PREFECT_UI_URL to link it")); }
      runs.appendChild(li);
    });
    var ol = $("timeline"); clear(ol);
    t.events.forEach(function (e) {
      var li = el("li", { class: "ev ev-" + e.kind, "data-kind": e.kind });
      li.appendChild(el("time", { datetime: e.at || "" }, stamp(e.at, companyTz)));
      li.appendChild(el("strong", {}, " " + e.title));
      if (e.detail) { li.appendChild(el("span", { class: "detail" }, " " + e.detail)); }
      ol.appendChild(li);
    });
  }

  // ------------------------------------------------------------------ go

  if (state.token) { start(); } else { showLogin(""); }
})();
