// eventshop console: a little progressive JavaScript (the pages work without it).
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // The live log: new events matching the filters arrive as Server-Sent Events, each a
  // rendered <tr class="event">, prepended to the table.
  var live = document.getElementById("live");
  var tbody = document.querySelector("#events tbody");
  if (live && tbody && window.EventSource) {
    var source = null;
    var resumeAfter = null;
    var open = function () {
      var src = live.getAttribute("data-src");
      if (resumeAfter) src = src.replace(/([?&]after=)[^&]*/, "$1" + encodeURIComponent(resumeAfter));
      source = new EventSource(src);
      source.addEventListener("row", function (message) {
        if (message.lastEventId) resumeAfter = message.lastEventId;
        var template = document.createElement("template");
        template.innerHTML = message.data.trim();
        var row = template.content.firstElementChild;
        if (!row) return;
        var position = row.getAttribute("data-position");
        if (tbody.querySelector('tr.event[data-position="' + position + '"]')) return;
        row.classList.add("new");
        tbody.insertBefore(row, tbody.firstChild);
        var empty = document.querySelector("p.empty");
        if (empty) empty.remove();
      });
      source.addEventListener("error", function () { live.textContent = "reconnecting"; });
      source.addEventListener("open", function () { live.textContent = "live"; });
    };
    // A page left for another (and kept in the back/forward cache) closes its stream, so that
    // hidden pages never hold the browser's few connections to the server; back on it, the
    // stream resumes after the last row it showed.
    window.addEventListener("pagehide", function () {
      if (source) { source.close(); source = null; }
    });
    window.addEventListener("pageshow", function () {
      if (!source) open();
    });
    open();
  }
  // A page that asks for it (a rebuild under way) reloads itself.
  var refresh = document.querySelector("[data-refresh]");
  if (refresh) {
    setTimeout(function () { window.location.reload(); }, Number(refresh.getAttribute("data-refresh")) || 1000);
  }
});
