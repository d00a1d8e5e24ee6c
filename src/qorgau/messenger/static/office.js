// Qorgau messenger office pages: the sender's notice page follows confirmations live.
// The stream only says that the count changed; the share table is re-rendered by the server.
(function () {
  "use strict";
  var box = document.getElementById("of-shares");
  if (!box || !window.EventSource) return;
  var refreshing = false;
  function refresh() {
    if (refreshing) return;
    refreshing = true;
    fetch(box.dataset.refresh, { headers: { "X-Requested-With": "fetch" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) { if (html !== null) box.innerHTML = html; })
      .finally(function () { refreshing = false; });
  }
  var source = new EventSource(box.dataset.live);
  source.addEventListener("shares", refresh);
  // After a reconnect the count may have moved while the stream was down.
  source.addEventListener("ready", refresh);
})();
