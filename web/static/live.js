// Live updates for the status page: when the server says "changed" on the event
// stream, fetch the status fragment and swap it in. Plain JS, no dependencies, so the
// page works on a server with no internet access.
(function () {
  "use strict";
  var main = document.getElementById("status");
  var live = document.getElementById("live");
  if (!main || !window.EventSource) { return; }

  var fetching = false;
  var again = false;

  function show(state, text) {
    live.dataset.state = state;
    live.textContent = text;
  }

  function refresh() {
    if (fetching) { again = true; return; }
    fetching = true;
    fetch(main.dataset.fragment, { headers: { "Accept": "text/html" } })
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.text(); })
      .then(function (html) { main.innerHTML = html; })
      .catch(function () { show("error", "update failed"); })
      .finally(function () {
        fetching = false;
        if (again) { again = false; refresh(); }
      });
  }

  var source = new EventSource(main.dataset.events);
  source.addEventListener("open", function () { show("live", "live"); });
  source.addEventListener("error", function () { show("error", "reconnecting…"); });
  // "hello" comes first on every (re)connection: refresh in case we missed changes.
  source.addEventListener("hello", refresh);
  source.addEventListener("changed", refresh);
})();
