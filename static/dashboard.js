// Maître: swaps the server's cards into the grid, live over one WebSocket (docs/protocol.md).
(function () {
  "use strict";
  var body = document.body, grid = document.getElementById("grid");
  var indicatorEl = document.getElementById("connection"), moveBar = document.getElementById("move-bar");
  var warnAt = +body.dataset.idleWarning, alertAt = +body.dataset.idleAlert;
  var version = +grid.dataset.version, ws = null, attempt = 0, retryAt = 0, retryTimer = 0, stableTimer = 0;
  var troubleSince = Date.now(), syncing = false, pending = {}, seq = 0, moveFrom = null, pick = null;
  var failures = 0, pollTimer = 0, polled = false, opened = false, etag = "";
  var skew = Date.parse(body.dataset.now) - Date.now(); // idle and Restore times: the server's clock

  function card(id) { return document.getElementById("table-" + id); }
  function now() { return Date.now() + skew; }

  function send(message) {
    if (!ws || ws.readyState !== 1) return false;
    ws.send(JSON.stringify(message));
    return true;
  }

  function connect() {
    if (ws && ws.readyState < 2) return;
    clearTimeout(retryTimer);
    retryAt = 0;
    var socket = ws = new WebSocket(location.origin.replace(/^http/, "ws") + body.dataset.socket);
    socket.onopen = function () {
      troubleSince = 0;
      opened = true;
      failures = 0;
      clearInterval(pollTimer);
      pollTimer = 0;
      polled = false;
      stableTimer = setTimeout(function () { attempt = 0; }, 60000);
      indicator();
    };
    socket.onmessage = function (event) { receive(JSON.parse(event.data)); };
    socket.onclose = function (event) {
      if (ws !== socket) return;
      ws = null;
      syncing = false;
      stopMove();
      clearTimeout(stableTimer);
      troubleSince = troubleSince || Date.now();
      if (event.code === 4401) { location.href = body.dataset.login; return; } // close codes: app/protocol.py
      // a socket that never opens (a proxy? a firewall?): poll the grid meanwhile
      failures = opened ? 0 : failures + 1;
      opened = false;
      if (failures >= 3 && !pollTimer) { poll(); pollTimer = setInterval(poll, 30000); }
      // backoff with full jitter: 0.5 s doubling, up to 30 s
      var delay = Math.random() * Math.min(30000, 500 * Math.pow(2, attempt++));
      retryAt = Date.now() + delay;
      retryTimer = setTimeout(connect, delay);
      indicator();
    };
  }

  function show(shown) { // name and idle windows
    body.querySelector("h1").textContent = shown.name;
    warnAt = shown.idle_warning_minutes;
    alertAt = shown.idle_alert_minutes;
  }

  function receive(message) {
    if (message.type === "tables_snapshot") {
      grid.innerHTML = message.html;
      version = message.version;
      skew = Date.parse(message.now) - Date.now();
      show(message.restaurant);
      stopMove();
      refresh();
      listRequests();
    } else if (message.type === "table_update" || message.type === "table_removed") {
      if (message.version <= version) return;
      if (message.version > version + 1) { resync(version); return; }
      var table = message.table || {id: message.table_id}, old = card(table.id);
      version = message.version;
      if (moveFrom === table.id && table.status !== "occupied") stopMove();
      if (!message.html) { if (old) old.remove(); } // removed from the floor
      else if (!old) { resync(); return; } // new to this grid: take a fresh snapshot
      else {
        old.outerHTML = message.html;
        var fresh = card(table.id);
        if (fresh.dataset.place !== old.dataset.place) resync(); // another area or place in the order
        if (old.classList.contains("busy")) busy(fresh, true);
        if (fresh.dataset.lastActive) tick(fresh, now());
        expire(fresh, now());
      }
      listRequests();
    } else if (message.type === "restaurant_update") {
      show(message.restaurant);
      refresh();
    } else if (message.type === "waiter_request") {
      if (navigator.vibrate) navigator.vibrate(200);
      if (audio) beep();
    } else if (message.ref === "sync") {
      syncing = false;
    } else if (message.type === "ack" || message.type === "error") {
      settle(message);
    }
  }

  // While the socket is blocked, actions take the HTTP road: the same fields to the form's action.
  function post(url, fields, ref) {
    var form = new URLSearchParams(fields);
    form.append("csrf_token", body.dataset.csrf);
    fetch(url, {method: "POST", body: form,
      headers: {Accept: "application/json"}, credentials: "same-origin"})
      .then(function (r) { return r.json(); })
      .then(function (answer) { answer.ref = ref; settle(answer); poll(); },
        function () { settle({type: "error", ref: ref, detail: "Not connected. Try again in a moment."}); });
  }

  function poll() {
    fetch(body.dataset.grid, {headers: {"If-None-Match": etag}, credentials: "same-origin"}).then(function (r) {
      polled = r.ok || r.status === 304;
      if (r.status === 401) location.href = body.dataset.login;
      if (r.status !== 200) return;
      etag = r.headers.get("ETag") || "";
      return r.text().then(function (html) {
        grid.innerHTML = html;
        version = +etag.replace(/"/g, "") || version;
        refresh();
      });
    }, function () { polled = false; });
  }

  function resync(since) {
    if (syncing) return;
    syncing = send({action: "sync", since: since, ref: "sync"});
  }

  function settle(message) {
    var id = pending[message.ref];
    if (id === undefined) return;
    delete pending[message.ref];
    var target = card(id);
    if (!target) return;
    busy(target, false);
    if (message.type === "error") note(target, message.detail);
  }

  function act(action, fields, id, url) {
    var ref = "a" + (++seq), target = card(id);
    if (!send(Object.assign({action: action, ref: ref}, fields))) {
      if (!pollTimer) { note(target, "Not connected. Try again in a moment."); return; }
      post(url, fields, ref);
    }
    pending[ref] = id;
    busy(target, true);
    target.querySelectorAll("[popover]").forEach(function (p) { if (p.hidePopover) p.hidePopover(); });
    setTimeout(function () {
      if (pending[ref] === undefined) return;
      delete pending[ref];
      var late = card(id);
      if (late) { busy(late, false); note(late, "No answer from the server. Try again."); }
    }, 10000);
  }

  function busy(target, on) {
    target.classList.toggle("busy", on);
    target.querySelectorAll("button").forEach(function (b) { b.disabled = on; });
  }

  function note(target, text) {
    var el = target.querySelector(".note");
    el.textContent = text;
    setTimeout(function () { if (el.textContent === text) el.textContent = ""; }, 6000);
  }

  function startMove(id, button) { // move or join: the next tap picks a free table
    moveFrom = id;
    pick = button;
    body.classList.add("moving");
    card(id).classList.add("move-source");
    moveBar.firstElementChild.textContent = button.dataset.prompt;
    moveBar.hidden = false;
  }

  function stopMove() {
    var source = moveFrom !== null && card(moveFrom);
    if (source) source.classList.remove("move-source");
    moveFrom = null;
    body.classList.remove("moving");
    moveBar.hidden = true;
  }

  grid.addEventListener("click", function (event) {
    var target = event.target.closest(".card");
    if (!target) return;
    var id = +target.dataset.id, button = event.target.closest("button[data-action]"), fields = {};
    if (moveFrom !== null) {
      event.preventDefault();
      var from = moveFrom, b = pick;
      stopMove();
      fields[b.dataset.source || "table_id"] = from;
      fields[b.dataset.pick] = id;
      if (target.dataset.status === "free") act(b.dataset.action, fields, from, b.form.action);
      return;
    }
    if (!button) return;
    event.preventDefault(); // the script takes the forms over
    if (button.dataset.pick) { startMove(id, button); return; }
    // the form's fields: text as typed, the rest (ids, counts) as numbers
    fields.table_id = id;
    [].forEach.call(button.form.elements, function (el) {
      if (el.name && el.type !== "submit" && !/^(csrf_token|back)$/.test(el.name) && (el.value || el.type == "text"))
        fields[el.name] = el.type === "text" ? el.value : +el.value;
    });
    if (button.name) fields[button.name] = +button.value;
    act(button.dataset.action, fields, id, button.form.action);
  });
  moveBar.querySelector("[data-cancel]").addEventListener("click", stopMove);
  document.addEventListener("keydown", function (event) { if (event.key === "Escape") stopMove(); });

  // Idle time ticks here, from each card's last activity.
  function refresh() {
    var at = now();
    grid.querySelectorAll("[data-last-active]").forEach(function (c) { tick(c, at); });
    expire(grid, at);
  }

  function expire(root, at) { // a Restore whose window has run out goes
    root.querySelectorAll("form[data-until]").forEach(function (f) { if (Date.parse(f.dataset.until) <= at) f.remove(); });
  }

  function since(el, iso, at) { // touches the page only on a change
    var minutes = Math.max(0, Math.floor((at - Date.parse(iso)) / 60000));
    var shown = el.querySelector(".minutes");
    if (shown.textContent !== String(minutes)) shown.textContent = minutes;
    return minutes;
  }

  function tick(target, at) {
    var minutes = since(target.querySelector(".idle"), target.dataset.lastActive, at);
    var level = minutes >= alertAt ? "alert" : minutes >= warnAt ? "warning" : "";
    if ((target.getAttribute("data-idle") || "") !== level) target.setAttribute("data-idle", level);
    target.querySelectorAll(".request").forEach(function (c) { since(c, c.dataset.since, at); });
  }

  // The calls waiting, oldest first, from the cards.
  function listRequests() {
    var calls = [].slice.call(grid.querySelectorAll(".request")), list = requestsEl.querySelector("ol");
    calls.sort(function (a, b) { return a.dataset.since < b.dataset.since ? -1 : 1; });
    list.textContent = "";
    calls.forEach(function (call) {
      var item = document.createElement("li");
      item.textContent = "Table " + call.closest(".card").querySelector("h3").textContent + ": " +
        call.querySelector(".what").textContent;
      list.appendChild(item);
    });
    requestsEl.hidden = !calls.length;
  }

  // Sound on new calls: off until someone taps, as browsers require.
  var audio = null, soundButton = document.getElementById("sound"), requestsEl = document.getElementById("requests");
  function beep() {
    var tone = audio.createOscillator();
    tone.connect(audio.destination);
    tone.start();
    tone.stop(audio.currentTime + 0.25);
  }
  soundButton.hidden = false;
  soundButton.addEventListener("click", function () {
    audio = audio ? null : new (window.AudioContext || window.webkitAudioContext)();
    soundButton.textContent = audio ? "Sound on" : "Sound off";
    soundButton.setAttribute("aria-pressed", !!audio);
  });

  function indicator() {
    var state = "live", text = "Live";
    if (troubleSince && Date.now() - troubleSince < 500) return; // brief trouble is not shown
    if (troubleSince) {
      state = !navigator.onLine ? "offline" : pollTimer && polled ? "polling" : "reconnecting";
      text = state === "offline" ? "Offline" : state === "polling" ? "Updates every 30 s (live connection blocked)"
        : retryAt > Date.now() ? "Reconnecting in " + Math.ceil((retryAt - Date.now()) / 1000) + " s"
        : "Reconnecting…";
    }
    indicatorEl.textContent = text;
    indicatorEl.setAttribute("data-state", state);
  }

  function wake() {
    if (pollTimer) poll();
    if (!ws) connect();
  }
  window.addEventListener("online", wake);
  window.addEventListener("offline", indicator);
  window.addEventListener("pageshow", wake);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) wake(); });
  setInterval(indicator, 500);
  setInterval(refresh, 15000);
  setInterval(function () { send({action: "ping"}); }, 25000);
  refresh();
  connect();
})();
