// Maître's waiter page: my section's calls (oldest first), my tables, the other calls, then the rest of the floor;
// my calls alert the phone. On the shared live.js
(() => {
  "use strict";
  var {$, all, alarm} = maitre, data = document.body.dataset, grid = $("grid"), rank = {}, home = {}, wanted, lock;
  var mine = (c) => c.dataset.waiter === data.name;
  var key = (c) => c.dataset.requests ? c.querySelector(".request").dataset.since : rank[c.dataset.id];

  function place(c) { // moved only when its list or its place in it changes
    var list = c.dataset.requests ? $(mine(c) ? "my-calls" : "other-calls")
      : mine(c) ? $("my-tables") : home[c.dataset.id];
    var next = [...list.children].find((o) => o !== c && key(o) > key(c)) || null;
    if (c.parentNode !== list || c.nextElementSibling !== next) list.insertBefore(c, next);
  }
  maitre.swapped = place;
  maitre.changed = (filled) => filled && all(document, ".card", (c, i) => { // a new grid: each card in its list
    if (!grid.contains(c)) return c.remove();
    rank[c.dataset.id] = i;
    home[c.dataset.id] = c.parentNode;
    place(c);
  });
  // a call in my section, or in nobody's: the others' calls do not alert this phone (until overdue)
  maitre.called = (c, text) => (!c || !c.dataset.waiter || mine(c)) && alarm(text);

  var bell = $("notify"), Bell = window.Notification, wake = $("wake");
  function allowed() {
    if (bell.ariaPressed = Bell.permission === "granted") navigator.serviceWorker?.register(data.worker);
  }
  if (Bell && isSecureContext) {
    bell.hidden = false;
    bell.onclick = () => Bell.requestPermission().then(allowed);
    allowed();
  }

  function keep() { // the Screen Wake Lock (HTTPS only); the browser lets go of it while the page is hidden
    if (wanted) navigator.wakeLock.request("screen").then((l) => lock = l, () => wake.ariaPressed = wanted = false);
  }
  if (navigator.wakeLock) {
    wake.hidden = false;
    wake.onclick = () => (wake.ariaPressed = wanted = !wanted) ? keep() : lock?.release();
    document.addEventListener("visibilitychange", () => document.hidden || keep());
  }
})();
