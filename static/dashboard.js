// Maître's dashboard: Select mode, End of service, Undo and the list of calls, on the shared live.js
(() => {
  "use strict";
  var {$, card, all, act, note, words, live} = maitre, grid = $("grid");
  var bulk = $("bulk-form"), end = $("end-form"), undo = $("undo");

  maitre.swapped = (c) => c.querySelector(".pick").checked && tally(); // a pushed card stays selected
  maitre.changed = () => { // the calls, oldest first
    var list = $("requests"), calls = all(grid, ".request", (c) => c);
    calls.sort((a, b) => a.dataset.since < b.dataset.since ? -1 : 1);
    list.lastElementChild.replaceChildren(...calls.map((c) =>
      Object.assign(document.createElement("li"), {textContent: words(c)})));
    if (list.hidden != !calls.length) list.hidden = !calls.length; // an attribute written restyles the page
  };
  maitre.refreshed = () => { // Undo lasts while one of its tables has Restore
    tally();
    if (undo && !all(undo, "[name=table_id]", (i) => card(i.value)?.querySelector("form[data-until]")).some(Boolean))
      put(undo, []);
  };

  document.onsubmit = (event) => {
    var form = new FormData(event.target, event.submitter), action = form.get("action");
    var ids = [...new Set(form.getAll("table_id"))];
    if (!action || !live()) return; // not connected: the form posts
    event.preventDefault();
    act("bulk", {actions: ids.map((id) => ({action, table_id: +id}))}, ids, "", (answer) => {
      if (answer.type === "error") return note(bulk.parentNode, answer.detail);
      bulk.reset(); // the cards' boxes are the bar's
      put(undo, action === "close_table" ? ids : []);
      tally();
    });
  };
  document.onchange = tally;
  document.addEventListener("beforetoggle", tally, true); // End of service counts as it opens

  function put(form, ids) { // Undo shows while it has tables (CSS)
    all(form, "[name=table_id]", (i) => i.remove());
    form.prepend(...ids.map((value) =>
      Object.assign(document.createElement("input"), {type: "hidden", name: "table_id", value})));
  }

  function tally() {
    if (!bulk) return;
    var picked = all(grid, ".pick:checked", (p) => p.parentNode), n = picked.length;
    var ids = [...new Set(all(grid, "[data-status=occupied] .pick", (p) => p.value))];
    $("picked").textContent = n ? "Selected: " + n : "Select tables first.";
    all(bulk, "button", (b) => {
      var odd = picked.find((c) => c.dataset.status !== b.dataset.needs);
      b.disabled = !n || odd;
      b.nextElementSibling.textContent = odd ? "Table " + odd.querySelector("h3").textContent + " is " +
        odd.dataset.status + "." : "";
    });
    put(end, ids);
    end.querySelector("button").disabled = !(end.querySelector("b").textContent = ids.length);
  }
})();
