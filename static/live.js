// Maître: the tables live over one WebSocket (docs/protocol.md); each page's own script sets maitre's hooks
var maitre = (() => {
  "use strict";
  var $ = (id) => document.getElementById(id), body = document.body, data = body.dataset, grid = $("grid");
  var moveBar = $("move-bar"), card = (id) => $("table-" + id), live = () => ws?.readyState === 1, nothing = () => {};
  var hooks = {$, card, all, act, note, alarm, words, live, // and what the page's script sets:
    swapped: nothing, changed: nothing, refreshed: nothing, called: (c, text) => alarm(text)};
  var warnAt = +data.idleWarning, alertAt = +data.idleAlert, version = +grid.dataset.version;
  var ws, attempt = 0, retryAt = 0, retryTimer, stableTimer, failures = 0, pollTimer, polled, syncing, etag = "";
  var troubleSince = Date.now(), pending = {}, seq = 0, moveFrom, pick, audio, checked;
  var parse = document.createElement("div");
  var skew = Date.parse(data.now) - Date.now(); // times by the server's clock
  var now = () => Date.now() + skew, within = data.claimWithin * 1000;
  var send = (message) => live() && (ws.send(JSON.stringify(message)), true);

  function all(root, selector, each) {
    return Array.from(root.querySelectorAll(selector), each);
  }

  function connect() {
    if (ws?.readyState < 2) return;
    clearTimeout(retryTimer);
    retryAt = 0;
    var socket = ws = new WebSocket(location.origin.replace(/^http/, "ws") + data.socket);
    socket.onopen = () => {
      troubleSince = 0;
      failures = -1; // counts sockets that never open (a proxy?)
      pollTimer = clearInterval(pollTimer);
      stableTimer = setTimeout(() => attempt = 0, 60000);
      indicator();
    };
    socket.onmessage = (event) => receive(JSON.parse(event.data));
    socket.onclose = (event) => {
      if (ws !== socket) return;
      ws = syncing = null;
      move();
      clearTimeout(stableTimer);
      troubleSince ||= Date.now();
      if (event.code === 4401) return location.href = data.login; // app/protocol.py
      if (++failures > 2 && !pollTimer) { poll(); pollTimer = setInterval(poll, 30000); }
      var delay = Math.random() * Math.min(30000, 500 * 2 ** attempt++); // full jitter
      retryAt = Date.now() + delay;
      retryTimer = setTimeout(connect, delay);
      indicator();
    };
  }

  function receive(message) {
    var {type, restaurant: shown, table = {id: message.table_id}} = message, old = card(table.id), fresh;
    if (shown) {
      $("name").textContent = shown.name;
      warnAt = shown.idle_warning_minutes;
      alertAt = shown.idle_alert_minutes;
      refresh();
    }
    if (type === "tables_snapshot") {
      version = message.version;
      skew = Date.parse(message.now) - Date.now();
      move();
      fill(message.html);
    } else if (/^table_/.test(type)) {
      if (message.version <= version) return;
      if (message.version > version + 1) return resync(version);
      version = message.version;
      if (moveFrom === table.id && table.status !== "occupied") move();
      if (!message.html) old?.remove();
      else if (!old) return resync();
      else {
        parse.innerHTML = message.html;
        fresh = parse.firstChild;
        if (fresh.dataset.place != old.dataset.place) resync();
        swap(old, fresh);
        busy(old, old.matches(".busy"));
        if (old.dataset.lastActive) tick(old, now());
        expire(old, now());
        hooks.swapped(old);
      }
      hooks.changed();
    } else if (type === "waiter_request") {
      var call = document.querySelector(`[data-request="${message.request.id}"]`);
      hooks.called(call?.closest(".card"), call ? words(call) : "Table " + message.request.table);
    } else if (message.ref === "sync") {
      syncing = false;
    } else pending[message.ref]?.(message);
  }

  function swap(old, fresh) { // in place: a part with an id stays; classes are the page's
    var kids = old.childNodes, n = 0, k;
    for (k of old.getAttributeNames()) fresh.hasAttribute(k) || old.removeAttribute(k);
    for (k of fresh.attributes) k.name == "class" || old.getAttribute(k.name) == k.value ||
      old.setAttribute(k.name, k.value);
    for (var c of [...fresh.childNodes]) (k = kids[n++]) ? k.isEqualNode(c) ||
      (k.id ? swap(k, c) : k.replaceWith(c)) : old.append(c);
    while (kids[n]) kids[n].remove();
  }

  function fill(html) {
    grid.innerHTML = html;
    hooks.changed(true); // before refresh: the waiter's page places the cards
    refresh();
  }

  function post(url, fields, done) { // socket blocked: the HTTP road
    var form = new URLSearchParams({...fields, csrf_token: data.csrf});
    fetch(url, {method: "POST", body: form, headers: {Accept: "application/json"}})
      .then((r) => r.json())
      .then((answer) => { done(answer); poll(); },
        () => done({type: "error", detail: "Not connected. Try again in a moment."}));
  }

  function poll() {
    fetch(data.grid, {headers: {"If-None-Match": etag}}).then((r) => {
      polled = r.status < 400;
      if (r.status === 401) location.href = data.login;
      if (r.status === 200) {
        etag = r.headers.get("ETag") || "";
        version = +etag.slice(1, -1) || version;
        r.text().then(fill);
      }
    }, () => polled = false);
  }

  function resync(since) {
    if (!syncing) syncing = send({action: "sync", since, ref: "sync"});
  }

  function act(action, fields, ids, url, done) {
    var ref = "a" + ++seq, settle = pending[ref] = (answer) => {
      if (!pending[ref]) return;
      delete pending[ref];
      ids.forEach((id) => card(id) && busy(card(id), false));
      done(answer);
    };
    if (!send({action, ref, ...fields})) {
      if (!pollTimer) return settle({type: "error", detail: "Not connected. Try again in a moment."});
      post(url, fields, settle);
    }
    ids.forEach((id) => busy(card(id), true));
    all(document, "[popover]", (p) => p.hidePopover?.());
    setTimeout(settle, 10000, {type: "error", detail: "No answer from the server. Try again."});
  }

  var noted = (id) => (answer) => answer.type === "error" && card(id) && note(card(id), answer.detail);

  function busy(target, on) {
    target.classList.toggle("busy", on);
    all(target, "button", (b) => b.disabled = on);
  }

  function note(target, words) {
    var el = target.querySelector(".note");
    el.textContent = words;
    setTimeout(() => el.textContent === words && (el.textContent = ""), 6000);
  }

  function move(id, button) {
    card(moveFrom)?.classList.remove("move-source");
    card(moveFrom = id)?.classList.add("move-source");
    body.classList.toggle("moving", !(moveBar.hidden = !id));
    if (id) moveBar.firstElementChild.textContent = (pick = button).dataset.prompt;
  }

  document.onclick = (event) => {
    var target = event.target.closest(".card");
    if (!target) return;
    var id = +target.dataset.id, button = event.target.closest("button[data-action]"), fields = {}, from = moveFrom;
    if (from) {
      event.preventDefault();
      move();
      fields[pick.dataset.source || "table_id"] = from;
      fields[pick.dataset.pick] = id;
      if (target.dataset.status === "free") act(pick.dataset.action, fields, [from], pick.form.action, noted(from));
      return;
    }
    if (!button) return;
    event.preventDefault();
    if (button.dataset.pick) return move(id, button);
    fields.table_id = id;
    new FormData(button.form).forEach((value, name) => { // text as typed, else numbers
      var typed = button.form.elements[name].type === "text";
      if (!/^(csrf_token|back)$/.test(name) && (value || typed)) fields[name] = typed ? value : +value;
    });
    if (button.name) fields[button.name] = +button.value;
    act(button.dataset.action, fields, [id], button.form.action, noted(id));
  };
  moveBar.querySelector("[data-cancel]").onclick = () => move();
  document.onkeydown = (event) => { if (event.key == "Escape") move(); };

  function refresh() {
    var at = now();
    all(document, "[data-last-active]", (c) => tick(c, at));
    expire(document, at).forEach((call) => Date.parse(call.dataset.since) + within > checked && alarm(call, 1));
    checked = at;
    hooks.refreshed();
  }

  function expire(root, at) {
    all(root, "form[data-until]", (f) => Date.parse(f.dataset.until) <= at && f.remove());
    return all(root, ".request:not([data-claimed])", (c) => Date.parse(c.dataset.since) + within <= at &&
      (c.dataset.overdue = "", c)).filter(Boolean); // calls nobody claimed in time
  }

  function since(el, iso, at) {
    var minutes = Math.max(0, Math.floor((at - Date.parse(iso)) / 60000));
    el = el.querySelector(".minutes");
    if (el.textContent != minutes) el.textContent = minutes;
    return minutes;
  }

  function tick(target, at) {
    var minutes = since(target.querySelector(".idle"), target.dataset.lastActive, at);
    var level = minutes >= alertAt ? "alert" : minutes >= warnAt ? "warning" : "";
    if (target.dataset.idle !== level) target.dataset.idle = level;
    all(target, ".request", (c) => since(c, c.dataset.since, at));
  }

  function words(call) {
    return "Table " + call.closest(".card").querySelector("h3").textContent + ": " +
      call.querySelector(".what").textContent;
  }

  function alarm(call, overdue) {
    var text = (overdue ? "Overdue: " : "") + (call.nodeType ? words(call) : call);
    navigator.vibrate?.(overdue ? [400, 100, 400, 100, 400] : 200);
    if (audio) beep(0), overdue && beep(.4);
    if (window.Notification?.permission === "granted") navigator.serviceWorker?.register(data.worker)
      .then((r) => r.showNotification(text)); // Chrome on Android has no other way
  }

  function beep(at) {
    var tone = audio.createOscillator();
    tone.connect(audio.destination);
    tone.start(at += audio.currentTime);
    tone.stop(at + .25);
  }
  var sound = $("sound");
  sound.hidden = false;
  sound.onclick = () => { // browsers need a tap first
    audio = audio ? null : new AudioContext();
    sound.ariaPressed = !!audio;
  };

  function indicator() {
    var el = $("connection"), state = "live", wait = Math.ceil((retryAt - Date.now()) / 1000);
    if (Date.now() - troubleSince < 500) return; // brief trouble is not shown
    if (troubleSince) state = !navigator.onLine ? "offline" : pollTimer && polled ? "polling" : "reconnecting";
    el.textContent = state === "reconnecting" && wait > 0 ? "Reconnecting in " + wait + " s" : el.dataset[state];
    el.dataset.state = state;
  }

  function wake() {
    if (pollTimer) poll();
    if (!ws) connect();
  }
  onpageshow = ononline = wake;
  onoffline = indicator;
  document.onvisibilitychange = () => document.hidden || wake();
  addEventListener("DOMContentLoaded", () => { // after the page's own script (both defer)
    checked = now(); // calls overdue before the page opened do not alarm
    refresh();
    connect();
    setInterval(indicator, 500);
    setInterval(refresh, 15000);
    setInterval(send, 25000, {action: "ping"});
  });
  return hooks;
})();
