"""Client cost: the main-thread time a tablet spends applying one table_update, in headless Chromium.

The page is the real dashboard of a restaurant of `tables` tables (40 by default), served by the real
server. An init script wraps WebSocket so that each message's handler is timed together with the
style and layout it causes (a forced reflow right after it). Chromium's CPU is throttled 6x, as a
low-powered tablet; the same is measured unthrottled as the reference.

With `trace`, one more pass at 6x records Chromium's performance trace (the devtools.timeline
categories, as DevTools' Performance panel records them) and takes each update apart: the main
thread's time from one update's message to the next, by what it was spent on (`breakdown`, median ms
per update), with the elements each style recalculation visited and the objects each layout did.

    python -m bench.client_cost --tables 40 120 --updates 30 [--trace]
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import gzip
import json
import shutil
import statistics
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from .load import percentile
from .servers import ROOT, free_port, maitre, prepare

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
TIMING = """
(() => {
  const Native = window.WebSocket;
  window.__apply = [];
  window.WebSocket = function (url, protocols) {
    const ws = new Native(url, protocols);
    let handler = null;
    Object.defineProperty(ws, "onmessage", {set(fn) { handler = fn; }, get() { return handler; }});
    ws.addEventListener("message", (event) => {
      const start = performance.now();
      if (handler) handler.call(ws, event);
      void document.body.offsetHeight;
      if (event.data.startsWith('{"type":"table_update"')) window.__apply.push(performance.now() - start);
    });
    return ws;
  };
})();
"""
TRACE_CATEGORIES = ["devtools.timeline", "disabled-by-default-devtools.timeline", "v8.execute", "blink.user_timing"]
# a trace event's own time (its children's taken out) goes to the first category whose names it has
# (a card's HTML parsed by outerHTML or a <template> is ParseHTML; the script around it, FunctionCall)
KINDS = {
    "script": {"EventDispatch", "FunctionCall", "EvaluateScript", "TimerFire", "FireAnimationFrame", "RunMicrotasks",
               "v8.execute", "V8.Execute", "v8.callFunction", "v8.run", "V8.BytecodeBudgetInterrupt", "MinorGC",
               "MajorGC", "V8.GCScavenger", "BlinkGC.AtomicPhase"},
    "parse_html": {"ParseHTML"},
    "style": {"UpdateLayoutTree", "RecalculateStyles"},
    "layout": {"Layout"},
    "prepaint": {"PrePaint"},
    "paint": {"Paint", "PaintImage", "Layerize", "UpdateLayer", "Commit", "RasterTask"},
}


@dataclass
class ClientCost:
    scripts: dict[str, int]  # script_size()
    throttled_ms: list[float]
    unthrottled_ms: list[float]
    note: str = ""
    tables: int = 40  # cards on the grid
    cards_shown: int = 0  # cards in the 1024x768 viewport
    # median ms per update at 6x, by kind (trace): script, parse_html, style, layout, prepaint, paint, other, their
    # total, untraced (tasks' own time, outside any named event), message task (the task the update arrived in, the
    # rest of the total being the frames after it) and timed (this pass's p50 as timed above); then
    # the same kinds in the renderer thread's own CPU time ("script cpu"...: unthrottled, whatever else the box runs)
    breakdown: dict[str, float] = field(default_factory=dict)
    style_elements: float = 0  # median elements a style recalculation visited, per update
    layout_objects: float = 0  # median objects laid out (dirty), per update
    layout_roots: list[str] = field(default_factory=list)  # the nodes layouts started from, most common first


# what each page loads: the shared live script and its own (the waiter's page fetches the service worker,
# notifications.js, once notifications are allowed)
PAGE_SCRIPTS = {"dashboard": ("live.js", "dashboard.js"), "waiter": ("live.js", "waiter.js")}


def gzipped(data: bytes) -> int:
    return len(gzip.compress(data, compresslevel=9))


def script_size() -> dict[str, int]:
    """Gzipped bytes: each page's scripts (each file on its own, as the browser fetches them) and every static/*.js
    together, as the budget counts them (4,096 bytes a file, 6,144 all together)."""
    static = ROOT / "static"
    sizes = {page: sum(gzipped((static / name).read_bytes()) for name in names) for page, names in PAGE_SCRIPTS.items()}
    sizes["together"] = gzipped(b"".join(path.read_bytes() for path in sorted(static.glob("*.js"))))
    return sizes


def take_apart(trace: dict | list, updates: int) -> dict:
    """Each update's main-thread time, from its message's arrival to the next one's, by kind (self times)."""
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    arrivals = [e for e in events if e.get("name") == "WebSocketReceive"][-2 * updates:]
    main = (arrivals[0]["pid"], arrivals[0]["tid"])
    starts = [e["ts"] for e in arrivals]
    ends = [*starts[1:], starts[-1] + 150_000]
    spans = sorted((e for e in events if (e.get("pid"), e.get("tid")) == main and e.get("ph") == "X" and "dur" in e),
                   key=lambda e: (e["ts"], -e["dur"]))
    per_update = [defaultdict(float) for _ in starts]
    cpu = [defaultdict(float) for _ in starts]  # the thread's own CPU time: the box's other work left out
    elements, objects, roots = [0.0] * len(starts), [0.0] * len(starts), defaultdict(int)
    stack: list[tuple[dict, list[float]]] = []  # open events, each with its children's wall and CPU time

    def close(until: float) -> None:
        while stack and stack[-1][0]["ts"] + stack[-1][0]["dur"] <= until:
            event, children = stack.pop()
            if stack:
                stack[-1][1][0] += event["dur"]
                stack[-1][1][1] += event.get("tdur", 0)
            n = bisect.bisect_right(starts, event["ts"]) - 1
            if n < 0 or event["ts"] >= ends[n]:
                continue
            kind = "untraced" if event["name"] == "RunTask" else next(
                (k for k, names in KINDS.items() if event["name"] in names), "other")
            per_update[n][kind] += (event["dur"] - children[0]) / 1000
            cpu[n][kind] += (event.get("tdur", 0) - children[1]) / 1000
            args = event.get("args", {})
            if event["name"] == "UpdateLayoutTree":
                elements[n] += args.get("elementCount", 0)
            if event["name"] == "Layout":
                objects[n] += args.get("beginData", {}).get("dirtyObjects", 0)
                for root in args.get("endData", {}).get("layoutRoots", []):
                    roots[root.get("nodeName", "?")[:40]] += 1

    for event in spans:
        close(event["ts"])
        stack.append((event, [0.0, 0.0]))
    close(float("inf"))
    breakdown = {kind: statistics.median(u[kind] for u in per_update) for kind in [*KINDS, "other"]}
    breakdown["total"] = statistics.median(sum(u.values()) - u["untraced"] for u in per_update)
    breakdown["untraced"] = statistics.median(u["untraced"] for u in per_update)  # a task's own, unnamed time
    tasks = [e for e in spans if e["name"] == "RunTask"]
    breakdown["message task"] = statistics.median(  # the task the message arrived in: handler, forced style, layout
        next((t["dur"] for t in tasks if t["ts"] <= start < t["ts"] + t["dur"]), 0) / 1000 for start in starts)
    breakdown |= {f"{kind} cpu": statistics.median(u[kind] for u in cpu) for kind in [*KINDS, "other"]}
    breakdown["total cpu"] = statistics.median(sum(u.values()) - u["untraced"] for u in cpu)
    return {"breakdown": breakdown, "elements": statistics.median(elements), "objects": statistics.median(objects),
            "roots": [r for r, _ in sorted(roots.items(), key=lambda kv: -kv[1])][:3]}


async def measure_client(tmpdir: Path, updates: int, tables: int = 40, trace: bool = False) -> ClientCost:
    """`updates` disable/enable cycles (two table_updates each) on the first tables of a `tables`-table grid."""
    chromium = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if chromium is None:
        return ClientCost(script_size(), [], [], "not measured: no Chromium on this machine (apt-get install chromium)",
                          tables)
    from playwright.async_api import async_playwright

    db = tmpdir / f"client-{tables}.db"
    keys, table_ids = await prepare(db, 1, tables)
    port = free_port()
    server = maitre(db, port)
    base = f"http://127.0.0.1:{port}"
    cost = ClientCost(script_size(), [], [], tables=tables)
    try:
        async with async_playwright() as playwright, aiohttp.ClientSession() as session:
            browser = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            for rate, traced in ((6, False), (1, False), *([(6, True)] if trace else [])):
                page = await browser.new_page(viewport={"width": 1024, "height": 768})
                await page.add_init_script(TIMING)
                await page.goto(f"{base}/admin/login")
                await page.fill("#key", keys[0])
                await page.click("button[type=submit]")
                await page.wait_for_selector("#connection[data-state=live]")
                cost.cards_shown = await page.evaluate("""[...document.querySelectorAll('.card')].filter((c) => {
                    var r = c.getBoundingClientRect(); return r.bottom > 0 && r.top < innerHeight; }).length""")
                cdp = await page.context.new_cdp_session(page)
                await cdp.send("Emulation.setCPUThrottlingRate", {"rate": rate})
                if traced:
                    await browser.start_tracing(page=page, categories=TRACE_CATEGORIES)
                async with session.ws_connect(f"{base}/admin/ws/dashboard?token={keys[0]}") as ws:
                    await ws.receive()
                    for n in range(updates):
                        table_id = table_ids[0][n % tables]
                        for action in ("disable_table", "enable_table"):
                            await ws.send_json({"action": action, "table_id": table_id})
                            await asyncio.sleep(0.15)
                for _ in range(300):  # the page's CSP allows no eval, so wait_for_function cannot look
                    if await page.evaluate("window.__apply.length") >= 2 * updates:
                        break
                    await asyncio.sleep(0.1)
                if traced:
                    await asyncio.sleep(0.3)  # the last update's paint
                    raw = await browser.stop_tracing()
                    parts = take_apart(json.loads(raw), updates)
                    cost.breakdown = parts["breakdown"]
                    cost.style_elements, cost.layout_objects = parts["elements"], parts["objects"]
                    cost.layout_roots = parts["roots"]
                    cost.breakdown["timed"] = percentile(await page.evaluate("window.__apply"), 50)  # under the trace
                elif rate == 6:
                    cost.throttled_ms = await page.evaluate("window.__apply")
                else:
                    cost.unthrottled_ms = await page.evaluate("window.__apply")
                await page.close()
            await browser.close()
    finally:
        server.stop()
    return cost


def describe(cost: ClientCost) -> str:
    def p(values: list[float]) -> str:
        return f"p50 {percentile(values, 50):.2f} ms, p95 {percentile(values, 95):.2f} ms"

    lines = [f"{cost.tables} cards ({cost.cards_shown} in sight): 6x {p(cost.throttled_ms)}; "
             f"1x {p(cost.unthrottled_ms)} ({len(cost.throttled_ms)} updates)"]
    if cost.breakdown:
        wall = {k: v for k, v in cost.breakdown.items() if not k.endswith(" cpu")}
        lines.append("  trace at 6x, median ms per update: " + ", ".join(f"{k} {v:.2f}" for k, v in wall.items()))
        lines.append("  the same, the renderer's CPU time: " + ", ".join(
            f"{k[:-4]} {v:.2f}" for k, v in cost.breakdown.items() if k.endswith(" cpu")))
        lines.append(f"  style recalculation: {cost.style_elements:.0f} elements; layout: {cost.layout_objects:.0f} "
                     f"dirty objects, from {', '.join(cost.layout_roots) or 'nowhere'}")
    return "\n".join(lines)


async def main(tables: list[int], updates: int, trace: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for n in tables:
            print(describe(await measure_client(Path(tmp), updates, n, trace)), flush=True)
    print("scripts, gzipped:", script_size())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="A tablet's main-thread time per table_update, in headless Chromium.")
    parser.add_argument("--tables", type=int, nargs="+", default=[40], help="cards on the grid (each a run)")
    parser.add_argument("--updates", type=int, default=30, help="disable/enable cycles: two updates each")
    parser.add_argument("--trace", action="store_true", help="also take an update apart with Chromium's trace")
    options = parser.parse_args()
    asyncio.run(main(options.tables, options.updates, options.trace))
