// Live pages: one event stream per page (/events); on "changed" every element with a
// data-fragment URL is re-fetched and swapped in. While the stream is down a banner
// says so and the stream is reopened with a jittered backoff, so a wall display
// recovers by itself. Plain JS, no dependencies: the page works with no internet.
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.getAttribute("content") : "";

  // Scripts that change something send the session's CSRF token as a header.
  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body || {})
    });
  }
  window.packline = { csrf: csrf, post: post };
  document.addEventListener("htmx:configRequest", function (e) {
    e.detail.headers["X-CSRF-Token"] = csrf;
  });

  // Countdowns: <span data-due="ISO time"> shows "in 3 h 05 min" / "overdue 12 min".
  function words(s) {
    s = Math.floor(Math.abs(s));
    if (s < 60) { return s + " s"; }
    if (s < 3600) { return Math.floor(s / 60) + " min"; }
    if (s < 86400) {
      var m = Math.floor(s % 3600 / 60);
      return Math.floor(s / 3600) + " h " + (m < 10 ? "0" : "") + m + " min";
    }
    return Math.floor(s / 86400) + " d " + Math.floor(s % 86400 / 3600) + " h";
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-due]").forEach(function (el) {
      var left = (Date.parse(el.dataset.due) - now) / 1000;
      if (isNaN(left)) { return; }
      el.textContent = left >= 0 ? "in " + words(left) : "overdue " + words(left);
      el.classList.toggle("overdue", left < 0);
    });
  }
  tick();
  setInterval(tick, 1000);

  var page = document.getElementById("page");
  var live = document.getElementById("live");
  var banner = document.getElementById("disconnected");
  var streamUrl = page && page.dataset.events;
  if (!streamUrl || !window.EventSource) { return; }

  function show(state, text) {
    if (live) { live.dataset.state = state; live.textContent = text; }
    if (banner) { banner.hidden = state !== "error"; }
    document.body.dataset.live = state;
  }

  var fetching = false;
  var again = false;
  function refresh() {
    if (fetching) { again = true; return; }
    var parts = document.querySelectorAll("[data-fragment]");
    if (!parts.length) { return; }
    fetching = true;
    Promise.all(Array.prototype.map.call(parts, function (el) {
      return fetch(el.dataset.fragment, { headers: { "Accept": "text/html" }, credentials: "same-origin" })
        .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.text(); })
        .then(function (html) { el.innerHTML = html; });
    }))
      .then(tick)
      .catch(function () { show("error", "update failed"); })
      .finally(function () {
        fetching = false;
        if (again) { again = false; refresh(); }
      });
  }

  var source = null;
  var delay = 1000;
  var timer = null;
  function connect() {
    timer = null;
    source = new EventSource(streamUrl);
    source.addEventListener("open", function () { delay = 1000; show("live", "live"); });
    source.addEventListener("error", function () {
      show("error", "reconnecting…");
      // The browser retries by itself unless the stream was refused (closed): then
      // it is ours to reopen, a little later each time.
      if (source.readyState === EventSource.CLOSED && timer === null) {
        timer = setTimeout(connect, delay * (0.5 + Math.random()));
        delay = Math.min(delay * 2, 15000);
      }
    });
    // "hello" comes first on every (re)connection: refresh in case we missed changes.
    source.addEventListener("hello", function () { show("live", "live"); refresh(); });
    source.addEventListener("changed", refresh);
  }
  connect();
})();
