"""`run.py serve --workers N`: real processes on one port, found through /proc, with real dashboards.

Which worker serves a dashboard is read from the kernel, not from the server: /proc/PID/fd names the
sockets a worker holds, /proc/net/tcp the client port of each, and the client knows its own port.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bench.servers import RUN_PY, environment

from .support import SOCKET, Server, eventually, receive

ROOMY = ("--max-connections-per-key", "100", "--max-connections-per-restaurant", "100")


def workers_of(supervisor: int) -> set[int]:
    """The pids of the supervisor's workers: its children running multiprocessing's spawn_main (its resource
    tracker is a child too; a worker killed and not yet reaped has no command line)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat, command = (entry / "stat").read_text(), (entry / "cmdline").read_bytes()
        except OSError:  # it ended meanwhile
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == supervisor and b"spawn_main" in command:
            found.add(int(entry.name))
    return found


def clients_of(pid: int, port: int) -> set[int]:
    """The client ports of the connections process `pid` has accepted on `port`."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    clients = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        _, local, remote, state, *_, inode = line.split()[:10]
        if state == "01" and int(local.split(":")[1], 16) == port and inode in inodes:  # 01: established
            clients.add(int(remote.split(":")[1], 16))
    return clients


async def free_table(server: Server) -> int:
    """The id of a free table of the demo restaurant, from a dashboard's snapshot."""
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"{server.url}{SOCKET}?token={server.admin_key()}") as ws:
            snapshot = await receive(ws)
    return next(table["id"] for table in snapshot["tables"] if table["status"] == "free")


def worker_numbers(server: Server) -> dict[int, int]:
    """Each worker's number by pid, as the supervisor logged their starts."""
    started = (re.search(r"worker (\d+) started \(pid (\d+)\)", line) for line in server.output)
    return {int(found.group(2)): int(found.group(1)) for found in started if found}


async def two_workers(directory: Path, *flags: str) -> tuple[Server, set[int]]:
    server = await asyncio.to_thread(Server, directory, "serve", "--workers", "2", *flags)
    pids = workers_of(server.process.pid)
    assert len(pids) == 2, server.process_output()
    return server, pids


async def dashboards(session: aiohttp.ClientSession, server: Server, count: int,
                     pids: set[int]) -> dict[int, list[aiohttp.ClientWebSocketResponse]]:
    """`count` dashboards, open and past their snapshot, by the pid of the worker that accepted each."""
    opened = []
    for _ in range(count):
        ws = await session.ws_connect(f"{server.url}{SOCKET}?token={server.admin_key()}")
        assert (await receive(ws))["type"] == "tables_snapshot"
        opened.append(ws)
    clients = {pid: clients_of(pid, server.port) for pid in pids}
    by_worker: dict[int, list[aiohttp.ClientWebSocketResponse]] = {pid: [] for pid in pids}
    for ws in opened:
        (pid,) = [pid for pid in pids if ws.get_extra_info("sockname")[1] in clients[pid]]
        by_worker[pid].append(ws)
    return by_worker


async def scrape(server: Server, pids: set[int]) -> tuple[int, str]:
    """GET /metrics on a connection of its own: which worker answered (read from the kernel), and the text."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        client = writer.get_extra_info("sockname")[1]
        await eventually(lambda: any(client in clients_of(pid, server.port) for pid in pids))
        (answering,) = [pid for pid in pids if client in clients_of(pid, server.port)]
        writer.write(f"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nConnection: close\r\n\r\n".encode())
        head, _, body = (await asyncio.wait_for(reader.read(), 10)).partition(b"\r\n\r\n")
    finally:
        writer.close()
    assert head.startswith(b"HTTP/1.1 200 "), head
    return answering, body.decode()


async def scrape_each(server: Server, pids: set[int]) -> dict[int, str]:
    """A scrape answered by each of `pids` (the kernel picks the worker of each new connection)."""
    answers: dict[int, str] = {}
    for _ in range(60):  # both answer within 60 unless chance is 1 in 10**18
        pid, text = await scrape(server, pids)
        answers.setdefault(pid, text)
        if len(answers) == len(pids):
            return answers
    raise AssertionError(f"only {set(answers)} of {pids} answered")


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample of a scrape (0 when it is not there yet)."""
    values = [s.value for family in text_string_to_metric_families(text) for s in family.samples
              if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(values) <= 1, (name, labels, values)
    return values[0] if values else 0.0


def reporting(text: str, name: str) -> dict[str, float]:
    """A `liveall` gauge's value by the pid of each worker reporting it (its samples with a pid label)."""
    return {s.labels["pid"]: s.value for family in text_string_to_metric_families(text) for s in family.samples
            if s.name == name and "pid" in s.labels}


async def act(ws: aiohttp.ClientWebSocketResponse, action: str, table_id: int) -> None:
    await ws.send_json({"action": action, "table_id": table_id, "ref": action})
    while (message := await receive(ws))["type"] != "ack":
        assert message["type"] != "error", message


async def test_one_scrape_of_either_worker_counts_every_workers_actions_and_dashboards(tmp_path):
    server, pids = await two_workers(tmp_path, *ROOMY)
    try:
        async with aiohttp.ClientSession() as session:
            by_worker = await dashboards(session, server, 16, pids)
            first, second = (by_worker[pid] for pid in sorted(pids))
            assert first and second
            table_id = await free_table(server)
            for ws, action in [(first[0], "disable_table"), (second[0], "enable_table"), (first[-1], "disable_table")]:
                await act(ws, action, table_id)
            for pid, text in (await scrape_each(server, pids)).items():
                assert sample(text, "maitre_dashboards_open") == 16, pid
                assert sample(text, "maitre_actions_total", action="disable_table", outcome="ok") == 2, pid
                assert sample(text, "maitre_actions_total", action="enable_table", outcome="ok") == 1, pid
                assert reporting(text, "maitre_bus_on_redis") == {str(each): 0 for each in pids}, pid  # liveall
                assert "process_cpu_seconds_total" not in text  # it would describe only the worker answering
            for ws in first + second:
                await ws.close()
            await eventually_scraped(server, pids, lambda text: sample(text, "maitre_dashboards_open") == 0)
    finally:
        assert await asyncio.to_thread(server.stop) == 0, server.process_output()
    assert "Traceback" not in server.process_output()


def test_one_worker_reports_with_the_default_registry_and_its_process_basics(tmp_path):
    server = Server(tmp_path, "serve")
    try:
        status, text = server.get("/metrics")
        assert status == 200, text
        assert sample(text, "process_resident_memory_bytes") > 0 and sample(text, "maitre_dashboards_open") == 0
        assert reporting(text, "maitre_bus_on_redis") == {}  # no pid label: not the workers' files
        assert sample(text, "maitre_bus_on_redis") == 0
    finally:
        assert server.stop() == 0, server.process_output()


async def eventually_scraped(server: Server, pids: set[int], condition: Callable[[str], bool]) -> str:
    """A scrape (of whichever worker) for which `condition` holds, within 10 s."""
    found = ""

    async def holds() -> bool:
        nonlocal found
        _, found = await scrape(server, pids)
        return condition(found)

    for _ in range(100):
        if await holds():
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"never held; the last scrape:\n{found}")


async def test_a_killed_workers_dashboards_leave_the_gauge_and_its_actions_stay_counted(tmp_path):
    server, pids = await two_workers(tmp_path, *ROOMY)
    try:
        async with aiohttp.ClientSession() as session:
            by_worker = await dashboards(session, server, 12, pids)
            killed, survivor = sorted(pids, key=lambda pid: -len(by_worker[pid]))
            assert by_worker[killed] and by_worker[survivor]
            table_id = await free_table(server)
            await act(by_worker[killed][0], "disable_table", table_id)
            await act(by_worker[survivor][0], "enable_table", table_id)
            os.kill(killed, signal.SIGKILL)
            number = worker_numbers(server)[killed]
            # the supervisor marks it dead before it says so
            await eventually(lambda: any(f"worker {number} (pid {killed}) was killed by SIGKILL" in line
                                         for line in server.output))
            await eventually(lambda: any(f"worker {number} (pid " in line and "is serving again" in line
                                         for line in server.output))
            alive = workers_of(server.process.pid)
            for pid, text in (await scrape_each(server, alive)).items():
                assert sample(text, "maitre_dashboards_open") == len(by_worker[survivor]), pid
                assert sample(text, "maitre_actions_total", action="disable_table", outcome="ok") == 1, pid
                assert sample(text, "maitre_actions_total", action="enable_table", outcome="ok") == 1, pid
                assert reporting(text, "maitre_bus_on_redis") == {str(each): 0 for each in alive}, pid
            for ws in by_worker[survivor]:
                await ws.close()
    finally:
        assert await asyncio.to_thread(server.stop) == 0, server.process_output()


@pytest.mark.parametrize("bus", ["database", "redis"])
async def test_two_workers_share_the_port_and_a_change_on_one_reaches_a_dashboard_on_the_other(
        tmp_path, request, bus):
    redis = ("--redis-url", request.getfixturevalue("redis_server").url) if bus == "redis" else ()
    server, pids = await two_workers(tmp_path, *ROOMY, *redis)
    try:
        assert sum("Running on" in line for line in server.output) == 1
        assert any("2 workers and no MAITRE_REDIS_URL" in line for line in server.output) is (bus == "database")
        async with aiohttp.ClientSession() as session:
            # the kernel picks a worker per connection: with 16, both get some unless chance is 1 in 30,000
            by_worker = await dashboards(session, server, 16, pids)
            first, second = (by_worker[pid] for pid in sorted(pids))
            assert first and second and len(first) + len(second) == 16

            await first[0].send_json({"action": "disable_table", "table_id": await free_table(server), "ref": "d"})
            update = await receive(first[0])
            assert update["type"] == "table_update" and update["table"]["status"] == "disabled"
            assert await receive(second[0], timeout=5) == update  # through Redis, or the database watcher
            for ws in first + second:
                await ws.close()
        # each worker's access lines name it: both served dashboards
        names = {f"worker {number} aiohttp.access" for pid, number in worker_numbers(server).items() if pid in pids}
        await eventually(lambda: all(any(name in line and SOCKET in line for line in server.output) for name in names))
        assert len(names) == 2
    finally:
        assert await asyncio.to_thread(server.stop) == 0, server.process_output()
    assert "Traceback" not in server.process_output()


async def test_a_killed_worker_is_started_again_and_the_port_keeps_serving(tmp_path):
    server, pids = await two_workers(tmp_path, *ROOMY)
    try:
        async with aiohttp.ClientSession() as session:
            by_worker = await dashboards(session, server, 12, pids)
            killed, survivor = sorted(pids, key=lambda pid: -len(by_worker[pid]))
            os.kill(killed, signal.SIGKILL)

            await eventually(lambda: len(workers_of(server.process.pid) - {survivor}) == 1)
            (new,) = workers_of(server.process.pid) - {survivor}
            assert new != killed
            number = worker_numbers(server)[killed]
            assert any(f"worker {number} (pid {killed}) was killed by SIGKILL" in line for line in server.output)
            await eventually(lambda: any(f"worker {number} (pid {new}) is serving again" in line
                                         for line in server.output))
            for ws in by_worker[killed]:  # cut, without a close frame
                assert (await ws.receive(timeout=5)).type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
            # the survivor's dashboards stayed; a change reaches them; new dashboards get in
            table_id = await free_table(server)
            async with session.post(f"{server.url}/admin/tables/{table_id}/disable", headers={
                    "Authorization": f"Bearer {server.admin_key()}", "Accept": "application/json"}) as response:
                assert response.status == 200, await response.text()
            for ws in by_worker[survivor]:
                assert (await receive(ws, timeout=5))["table"]["id"] == table_id
            again = await dashboards(session, server, 4, {survivor, new})
            assert sum(map(len, again.values())) == 4
            for ws in by_worker[survivor] + [ws for opened in again.values() for ws in opened]:
                await ws.close()
    finally:
        assert await asyncio.to_thread(server.stop) == 0, server.process_output()


async def test_sigterm_closes_every_dashboard_with_1001_stops_every_worker_and_exits_0(tmp_path):
    server, pids = await two_workers(tmp_path, *ROOMY)
    async with aiohttp.ClientSession() as session:
        by_worker = await dashboards(session, server, 10, pids)
        opened = [ws for on_worker in by_worker.values() for ws in on_worker]
        stopping = asyncio.create_task(asyncio.to_thread(server.stop, signal.SIGTERM))
        for ws in opened:
            # the code the server's close frame carries, which a browser reports; not ws.close_code, which
            # aiohttp's client sets to 1006 when its own reply cannot be written: aiohttp's server closes
            # the connection right after its close frame, without waiting for the reply (the worker may
            # have exited by the time this loop reaches the socket)
            closing = await ws.receive(timeout=10)
            assert closing.type is aiohttp.WSMsgType.CLOSE and closing.data == 1001, closing
        assert await stopping == 0, server.process_output()
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids)
    assert any("every worker has stopped" in line for line in server.output)
    assert "Traceback" not in server.process_output()


async def test_workers_whose_supervisor_was_killed_stop_rather_than_hold_the_port(tmp_path):
    server, pids = await two_workers(tmp_path)
    server.process.kill()
    await asyncio.to_thread(server.process.wait)
    # ended: gone, or a zombie whoever adopted them has not reaped
    await eventually(lambda: all(not Path(f"/proc/{pid}").exists() or state(pid) == "Z" for pid in pids))
    server.runs[-1].close()
    assert sum("the supervisor has ended: stopping" in line for line in server.output) == 2
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=5).close()


def state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


async def test_a_worker_that_keeps_dying_at_start_stops_the_server(tmp_path):
    server, pids = await two_workers(tmp_path)
    worker = min(pids)
    try:
        for kills in range(1, 6):
            os.kill(worker, signal.SIGKILL)
            if kills < 5:  # its place is started again after a back-off: the one new worker
                await eventually(lambda: bool(workers_of(server.process.pid) - pids))
                (worker,) = workers_of(server.process.pid) - pids
                pids.add(worker)
        status = await asyncio.to_thread(server.process.wait, 30)
    finally:
        if server.process.poll() is None:
            server.stop()
    server.runs[-1].close()
    assert status == 1, server.process_output()
    assert server.output[-1].startswith("run.py: error: worker ") and "5 times in a row" in server.output[-1]
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids)


def run_py(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(RUN_PY), *args], capture_output=True, text=True, timeout=60,
                          env=environment() | (env or {}))


@pytest.mark.parametrize("args, env, said", [
    (("--workers", "0"), {}, "run.py: error: --workers: 0 is not a positive whole number"),
    ((), {"MAITRE_WORKERS": "0"}, "run.py: error: MAITRE_WORKERS: 0 is not a positive whole number"),
    (("--workers", "2", "--port", "0"), {},
     "run.py: error: several workers share one port: give MAITRE_PORT (--port) a number, not 0"),
], ids=["flag", "environment", "port 0"])
def test_an_unusable_number_of_workers_is_refused_in_one_line(tmp_path, args, env, said):
    result = run_py("serve", "--db", str(tmp_path / "maitre.db"), *args, env=env)
    assert result.returncode == 1 and result.stderr.strip().splitlines() == [said], result.stderr


def test_workers_refuse_a_port_something_listens_on_already(tmp_path):
    """Their SO_REUSEPORT would share it with another server of this user's: it must be free, as for one server."""
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # as another Maître's workers bind it
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = run_py("serve", "--db", str(tmp_path / "maitre.db"), "--workers", "2", "--port", port)
    assert result.returncode == 1, result.stderr
    (error,) = [line for line in result.stderr.splitlines() if line.startswith("run.py: error:")]
    assert "address already in use" in error and "Traceback" not in result.stderr
