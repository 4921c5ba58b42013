// Log viewer: the live tail. When the box is ticked, asks /logs/tail for the messages newer than
// the newest shown (same filters) every 2 s and puts them on top. No inline script: the CSP
// forbids it; texts are set with textContent, never as HTML.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var toggle = document.querySelector("[data-live-toggle]");
  var table = document.querySelector("[data-logs-table]");
  if (!toggle || !table) return;
  var status = document.querySelector("[data-live-status]");
  var body = table.tBodies[0];
  var url = toggle.getAttribute("data-tail-url");
  var after = toggle.getAttribute("data-last-id") || "0";
  var KEEP = 500;
  var timer = null;
  var busy = false;

  function cell(tr, text, cls) {
    var td = document.createElement("td");
    if (cls) td.className = cls;
    td.textContent = text == null ? "" : String(text);
    tr.appendChild(td);
    return td;
  }

  function row(m) {
    var tr = document.createElement("tr");
    tr.className = "fresh sev-" + (m.severity == null ? "none" : m.severity);
    tr.setAttribute("data-id", m.id);
    cell(tr, m.time, "nowrap");
    var host = cell(tr, "");
    var link = document.createElement("a");
    link.href = "/logs?host=" + encodeURIComponent(m.host);
    link.textContent = m.host;
    host.appendChild(link);
    cell(tr, m.facility || "—");
    var sev = cell(tr, "");
    var badge = document.createElement("span");
    badge.className = "sev";
    badge.textContent = m.severity_name || "—";
    sev.appendChild(badge);
    cell(tr, m.app);
    cell(tr, m.message, "msg");
    return tr;
  }

  function poll() {
    if (busy) return;
    busy = true;
    var sep = url.indexOf("?") >= 0 ? "&" : "?";
    fetch(url + sep + "after=" + encodeURIComponent(after), {
      credentials: "same-origin",
      headers: { "Accept": "application/json" }
    }).then(function (r) {
      if (!r.ok) throw new Error(String(r.status));
      return r.json();
    }).then(function (data) {
      var empty = body.querySelector("tr.empty");
      if (data.rows.length && empty) empty.remove();
      // Newest first: insert from the oldest so the newest ends on top.
      for (var i = data.rows.length - 1; i >= 0; i--) {
        body.insertBefore(row(data.rows[i]), body.firstChild);
      }
      while (body.rows.length > KEEP) body.deleteRow(body.rows.length - 1);
      after = String(data.last_id);
      if (status) status.textContent = new Date().toLocaleTimeString();
    }).catch(function () {
      if (status) status.textContent = "⚠";
    }).then(function () { busy = false; });
  }

  toggle.addEventListener("change", function () {
    if (toggle.checked) {
      poll();
      timer = window.setInterval(poll, 2000);
    } else if (timer !== null) {
      window.clearInterval(timer);
      timer = null;
      if (status) status.textContent = "";
    }
  });
});
