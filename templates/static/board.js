// The live alert board: server-sent events add, move and remove rows without reloading; the
// browser resumes from the last event it saw after a disconnection (EventSource's Last-Event-ID).
"use strict";
(function () {
  var table = document.getElementById("board");
  if (!table || table.dataset.live !== "1") return;
  var body = table.tBodies[0];
  var labels = document.getElementById("labels").dataset;
  var tz = table.dataset.tz || "UTC";
  var canAct = table.dataset.canAct === "1";
  var onlyDomain = table.dataset.filterDomain;
  var onlySeverity = table.dataset.filterSeverity;
  var liveState = document.getElementById("live-state");
  var empty = document.getElementById("board-empty");
  var OPEN = { new: true, transferred: true, acknowledged: true };
  var versions = {};
  var format = new Intl.DateTimeFormat("sv-SE", {
    timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  });

  // Sound: a short tone for each new critical alert, once the user turned it on.
  var sound = document.getElementById("sound-toggle");
  var audio = null;
  sound.checked = localStorage.getItem("vigie-sound") === "1";
  sound.addEventListener("change", function () {
    localStorage.setItem("vigie-sound", sound.checked ? "1" : "0");
    if (sound.checked && !audio) audio = new (window.AudioContext || window.webkitAudioContext)();
  });
  function beep() {
    if (!sound.checked) return;
    if (!audio) audio = new (window.AudioContext || window.webkitAudioContext)();
    var osc = audio.createOscillator();
    var gain = audio.createGain();
    osc.frequency.value = 880;
    gain.gain.value = 0.2;
    osc.connect(gain);
    gain.connect(audio.destination);
    osc.start();
    osc.stop(audio.currentTime + 0.3);
  }

  function cell(row, text, cls) {
    var td = document.createElement("td");
    if (cls) td.className = cls;
    td.textContent = text;
    row.appendChild(td);
    return td;
  }

  function render(a) {
    var row = document.createElement("tr");
    row.className = "alert level-" + a.severity + " fresh";
    row.dataset.id = a.id;
    row.dataset.severity = a.severity;
    row.dataset.lastSeen = a.last_seen;
    if (canAct) {
      var td = document.createElement("td");
      var box = document.createElement("input");
      box.type = "checkbox";
      box.name = "id";
      box.value = a.id;
      box.setAttribute("aria-label", String(a.id));
      td.appendChild(box);
      row.appendChild(td);
    }
    var level = cell(row, " " + labels["level-" + a.severity]);
    var dot = document.createElement("span");
    dot.className = "dot dot-" + a.severity;
    level.insertBefore(dot, level.firstChild);
    cell(row, a.domain);
    cell(row, a.resource);
    var msg = document.createElement("td");
    var link = document.createElement("a");
    link.href = "/alerts/" + a.id;
    link.textContent = a.message;
    msg.appendChild(link);
    row.appendChild(msg);
    cell(row, String(a.count));
    var when = cell(row, "");
    var time = document.createElement("time");
    time.dateTime = a.last_seen;
    time.textContent = format.format(new Date(a.last_seen));
    when.appendChild(time);
    var st = cell(row, labels["state-" + a.state] || a.state);
    if (a.flapping) {
      var flap = document.createElement("span");
      flap.className = "badge flapping";
      flap.textContent = labels.flapping + " ×" + a.flap_count;
      st.appendChild(document.createTextNode(" "));
      st.appendChild(flap);
    }
    return row;
  }

  function before(a, row) {
    var s = Number(row.dataset.severity);
    if (a.severity !== s) return a.severity > s;
    var t = Date.parse(a.last_seen), u = Date.parse(row.dataset.lastSeen);
    if (t !== u) return t > u;
    return a.id > Number(row.dataset.id);
  }

  function apply(a) {
    var seen = versions[a.id];
    if (seen && seen >= a.updated_at) return;
    versions[a.id] = a.updated_at;
    var existing = body.querySelector('tr[data-id="' + a.id + '"]');
    var shown = OPEN[a.state] && !a.in_maintenance && (!onlyDomain || a.domain === onlyDomain) &&
      (onlySeverity === "" || onlySeverity === undefined || String(a.severity) === onlySeverity);
    if (existing) {
      var box = existing.querySelector("input[type=checkbox]");
      var checked = box && box.checked;
      existing.remove();
      if (!shown) return refresh();
      var row = render(a);
      if (checked) row.querySelector("input").checked = true;
      insert(a, row);
    } else if (shown) {
      insert(a, render(a));
      if (a.severity === 2) beep();
    }
    refresh();
  }

  function insert(a, row) {
    var rows = body.rows;
    for (var i = 0; i < rows.length; i++) {
      if (before(a, rows[i])) {
        body.insertBefore(row, rows[i]);
        return;
      }
    }
    body.appendChild(row);
  }

  var countsTimer = null;
  function refresh() {
    empty.hidden = body.rows.length > 0;
    if (countsTimer) return;
    countsTimer = setTimeout(function () {
      countsTimer = null;
      fetch("/alerts/counts", { credentials: "same-origin" }).then(function (r) {
        return r.ok ? r.json() : null;
      }).then(function (counts) {
        if (!counts) return;
        var box = document.getElementById("counts");
        box.textContent = "";
        counts.forEach(function (c) {
          var link = document.createElement("a");
          link.className = "count level-bg-" + c.severity;
          link.href = "/alerts?domain=" + encodeURIComponent(c.domain) + "&severity=" + c.severity;
          link.dataset.domain = c.domain;
          link.dataset.severity = c.severity;
          var strong = document.createElement("strong");
          strong.textContent = c.count;
          link.appendChild(strong);
          link.appendChild(document.createTextNode(" " + c.domain + " · " + labels["level-" + c.severity]));
          box.appendChild(link);
        });
      });
    }, 500);
  }

  var source = new EventSource("/alerts/stream");
  source.addEventListener("open", function () {
    liveState.textContent = liveState.dataset.labelOn;
    liveState.classList.add("live");
  });
  source.addEventListener("error", function () {
    liveState.textContent = liveState.dataset.labelOff;
    liveState.classList.remove("live");
  });
  source.addEventListener("alert", function (event) {
    try {
      apply(JSON.parse(event.data));
    } catch (e) {
      console.warn("bad alert event", e);
    }
  });
  source.addEventListener("resync", function () {
    window.location.reload();
  });
})();
