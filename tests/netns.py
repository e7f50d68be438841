"""A real network link that can be cut: two network namespaces joined by a veth pair.

The server's listening socket is made inside one namespace ("the back office") and a
tablet's socket inside the other ("the dining room"), each by a short-lived thread that
has joined that namespace with setns(2); a socket stays in the namespace it was made in.
Both namespaces are made here, hold nothing but the two ends of the link, and are
removed afterwards: nothing listens on a network outside this machine's sandbox.
`cut()` takes the tablet's end of the link down, so its packets are dropped, both ways,
without a FIN or a reset: a tablet whose Wi-Fi went away.

Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) and `ip` from iproute2, as on CI.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
CLONE_NEWNET = 0x40000000
_numbers = itertools.count(1)


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=10)


def why_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "`ip` (iproute2) is not installed"
    return None


class Link:
    def __init__(self) -> None:
        n = next(_numbers)
        tag = f"{os.getpid() % 100000}{n}"
        self.office, self.room = f"maitre-office-{tag}", f"maitre-room-{tag}"
        subnet = (os.getpid() + n) % 250
        self.server_address, self.tablet_address = f"10.213.{subnet}.1", f"10.213.{subnet}.2"
        self.server_end, self.tablet_end = f"mo{tag}"[:15], f"mr{tag}"[:15]

    def __enter__(self) -> Link:
        ip("netns", "add", self.office)
        try:
            ip("netns", "add", self.room)
            ip("link", "add", self.server_end, "netns", self.office, "type", "veth",
               "peer", "name", self.tablet_end, "netns", self.room)
            for namespace, end, address in ((self.office, self.server_end, self.server_address),
                                            (self.room, self.tablet_end, self.tablet_address)):
                ip("-n", namespace, "addr", "add", f"{address}/30", "dev", end)
                ip("-n", namespace, "link", "set", end, "up")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        for namespace in (self.room, self.office):  # removing a namespace removes its end of the link
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True, timeout=10)

    def cut(self) -> None:
        """The tablet's end goes down: from now on every packet between the two is dropped."""
        ip("-n", self.room, "link", "set", self.tablet_end, "down")

    def listen(self, port: int) -> socket.socket:
        """A listening socket in the back office, on the server's end of the link."""
        def make() -> socket.socket:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.server_address, port))
            sock.listen(100)
            sock.setblocking(False)
            return sock
        return inside(self.office, make)

    def tablet_socket(self, family: int, kind: int, proto: int) -> socket.socket:
        """A socket in the dining room (for `aiohttp.TCPConnector(socket_factory=...)`)."""
        return inside(self.room, lambda: socket.socket(family, kind, proto))


def inside(namespace: str, make: Callable[[], T]) -> T:
    """Call `make` in a thread that has joined `namespace`; the thread ends, the namespace stays with what it made."""
    result: list[T] = []
    failure: list[BaseException] = []

    def work() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/var/run/netns/{namespace}", os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns into {namespace}")
            finally:
                os.close(fd)
            result.append(make())
        except BaseException as error:  # handed to the caller's thread
            failure.append(error)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]
