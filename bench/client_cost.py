"""Client cost: the main-thread time a tablet spends applying one table_update, in headless Chromium.

The page is the real dashboard of a 40-table restaurant, served by the real server. An
init script wraps WebSocket so that each message's handler is timed together with the
style and layout it causes (a forced reflow right after it). Chromium's CPU is
throttled 6x, as a low-powered tablet; the same is measured unthrottled as the reference.
"""

from __future__ import annotations

import asyncio
import gzip
import shutil
from dataclasses import dataclass
from pathlib import Path

import aiohttp

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


@dataclass
class ClientCost:
    scripts: dict[str, int]  # script_size()
    throttled_ms: list[float]
    unthrottled_ms: list[float]
    note: str = ""


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


async def measure_client(tmpdir: Path, updates: int) -> ClientCost:
    chromium = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if chromium is None:
        return ClientCost(script_size(), [], [], "not measured: no Chromium on this machine (apt-get install chromium)")
    from playwright.async_api import async_playwright

    keys, table_ids = await prepare(tmpdir / "client.db", 1, 40)
    port = free_port()
    server = maitre(tmpdir / "client.db", port)
    base = f"http://127.0.0.1:{port}"
    try:
        async with async_playwright() as playwright, aiohttp.ClientSession() as session:
            browser = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            results = []
            for rate in (6, 1):
                page = await browser.new_page(viewport={"width": 1024, "height": 768})
                await page.add_init_script(TIMING)
                await page.goto(f"{base}/admin/login")
                await page.fill("#key", keys[0])
                await page.click("button[type=submit]")
                await page.wait_for_selector("#connection[data-state=live]")
                cdp = await page.context.new_cdp_session(page)
                await cdp.send("Emulation.setCPUThrottlingRate", {"rate": rate})
                async with session.ws_connect(f"{base}/admin/ws/dashboard?token={keys[0]}") as ws:
                    await ws.receive()
                    for n in range(updates):
                        table_id = table_ids[0][n % 40]
                        for action in ("disable_table", "enable_table"):
                            await ws.send_json({"action": action, "table_id": table_id})
                            await asyncio.sleep(0.15)
                await page.wait_for_function(f"window.__apply.length >= {2 * updates}", timeout=30_000)
                results.append(await page.evaluate("window.__apply"))
                await page.close()
            await browser.close()
    finally:
        server.stop()
    return ClientCost(script_size(), results[0], results[1])
