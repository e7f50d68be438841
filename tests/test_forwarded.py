"""Who the client is behind a trusted proxy (app/web/forwarded.py), and everything that reads it."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from http.cookies import SimpleCookie
from ipaddress import ip_network

import pytest
from aiohttp.test_utils import TestServer, make_mocked_request

from app import create_app
from app.auth import SIGN_IN_COOKIE
from app.web.forwarded import Client, parse_address, resolve
from app.web.security import AccessLogger

from .support import SOCKET, origin, sign_in

LOCAL = [ip_network("127.0.0.1"), ip_network("10.0.0.0/8")]


def request_from(peer: str, **headers: str):
    request = make_mocked_request("GET", "/admin/login", headers=headers)
    request._transport_peername = (peer, 40000)  # what request.remote reads
    return request


@pytest.mark.parametrize(("text", "address"), [
    ("192.0.2.7", "192.0.2.7"), ("192.0.2.7:4711", "192.0.2.7"), ('"[2001:db8::1]:4711"', "2001:db8::1"),
    ("2001:db8::1", "2001:db8::1"), ("::ffff:192.0.2.7", "192.0.2.7"), ("unknown", None), ("_hidden", None),
    ("", None),
])
def test_addresses_as_proxies_write_them(text, address):
    parsed = parse_address(text)
    assert (str(parsed) if parsed is not None else None) == address


def test_from_a_trusted_proxy_the_forwarded_headers_name_the_client():
    request = request_from("127.0.0.1", **{"X-Forwarded-For": "192.0.2.7", "X-Forwarded-Proto": "https",
                                            "X-Forwarded-Host": "maitre.example"})
    assert resolve(request, LOCAL) == Client("192.0.2.7", "https", "maitre.example")


def test_from_any_other_peer_forwarded_headers_are_ignored():
    forged = {"X-Forwarded-For": "192.0.2.7", "X-Forwarded-Proto": "https", "Forwarded": "for=192.0.2.8"}
    assert resolve(request_from("192.0.2.99", **forged), LOCAL) is None
    assert resolve(request_from("127.0.0.1", **forged), []) is None  # nobody is trusted by default


def test_the_client_is_the_nearest_address_that_is_not_one_of_our_proxies():
    # a client that forges its own X-Forwarded-For gets it kept on the left; nginx appends the real peer
    request = request_from("127.0.0.1", **{"X-Forwarded-For": "203.0.113.1, 192.0.2.7, 10.1.2.3",
                                            "X-Forwarded-Proto": "https"})
    assert resolve(request, LOCAL) == Client("192.0.2.7", "https", None)
    only_ours = request_from("127.0.0.1", **{"X-Forwarded-For": "10.0.0.5, 10.1.2.3"})
    assert resolve(only_ours, LOCAL) == Client("10.0.0.5", None, None)  # all ours: the furthest one


def test_the_standard_forwarded_header_is_read_when_there_is_no_x_forwarded_for():
    forwarded = 'for=192.0.2.7;proto=https;host=maitre.example, for="[2001:db8::1]";proto=http;host=internal'
    request = request_from("127.0.0.1", Forwarded=forwarded)
    assert resolve(request, [*LOCAL, ip_network("2001:db8::/32")]) == Client("192.0.2.7", "https", "maitre.example")


def test_a_clients_own_forwarded_header_does_not_win_over_what_the_proxy_set():
    # nginx and Caddy set X-Forwarded-For and pass a client's Forwarded through untouched
    request = request_from("127.0.0.1", **{"Forwarded": "for=203.0.113.50;proto=https", "X-Forwarded-For": "192.0.2.7",
                                            "X-Forwarded-Proto": "https"})
    assert resolve(request, LOCAL) == Client("192.0.2.7", "https", None)


@pytest.mark.parametrize("headers", [
    {"X-Forwarded-For": "192.0.2.7", "X-Forwarded-Proto": "gopher", "X-Forwarded-Host": "evil.example/path"},
    {"X-Forwarded-For": "192.0.2.7", "X-Forwarded-Proto": "javascript", "X-Forwarded-Host": "a b"},
])
def test_a_scheme_or_host_that_is_not_one_is_left_as_the_request_came(headers):
    assert resolve(request_from("127.0.0.1", **headers), LOCAL) == Client("192.0.2.7", None, None)


def behind_tls(client_address: str = "192.0.2.7", host: str = "maitre.example") -> dict[str, str]:
    """What nginx in front of us says for a browser on https://maitre.example."""
    return {"X-Forwarded-For": client_address, "X-Forwarded-Proto": "https", "X-Forwarded-Host": host,
            "Origin": f"https://{host}"}


async def test_behind_a_trusted_tls_proxy_signing_in_works_and_the_cookie_is_secure(proxied, bistro_place):
    response = await proxied.post("/admin/login", data={"key": bistro_place.admin}, headers=behind_tls(),
                                  allow_redirects=False)
    assert response.status == 303
    assert SimpleCookie(response.headers["Set-Cookie"])[SIGN_IN_COOKIE]["secure"]


async def test_without_trusting_the_proxy_its_tls_origin_is_refused(client, bistro_place):
    response = await client.post("/admin/login", data={"key": bistro_place.admin}, headers=behind_tls(),
                                 allow_redirects=False)
    assert response.status == 403


async def test_behind_the_proxy_the_socket_opens_from_the_pages_own_https_origin(proxied, bistro_place):
    signed = await proxied.post("/admin/login", data={"key": bistro_place.admin}, headers=behind_tls(),
                                allow_redirects=False)
    token = SimpleCookie(signed.headers["Set-Cookie"])[SIGN_IN_COOKIE].value
    # the cookie is Secure, so a browser sends it only over HTTPS: here, to the proxy, which passes it on
    headers = {**behind_tls(), "Cookie": f"{SIGN_IN_COOKIE}={token}"}
    ws = await proxied.ws_connect(SOCKET, headers=headers)
    assert (await ws.receive_json())["type"] == "tables_snapshot"
    await ws.close()
    with pytest.raises(Exception, match="403"):
        await proxied.ws_connect(SOCKET, headers={**headers, "Origin": "https://evil.example"})
    page = await proxied.get("/admin/dashboard", headers=headers)
    assert page.status == 200 and 'data-role="admin"' in await page.text()


async def test_sign_in_needs_our_origin(client, bistro_place):
    for headers in ({}, {"Origin": "null"}, {"Origin": "https://evil.example"}):
        response = await client.post("/admin/login", data={"key": bistro_place.admin}, headers=headers,
                                     allow_redirects=False)
        assert response.status == 403, headers
        assert SIGN_IN_COOKIE not in response.cookies
    assert (await sign_in(client, bistro_place.admin)).status == 303


async def test_failed_sign_ins_count_per_client_on_every_road_and_block_nobody_else(proxied, bistro_place):
    guesser = behind_tls("192.0.2.66")
    for n in range(10):  # form, Bearer and ?token= all count against one allowance
        if n % 3 == 0:
            status = (await proxied.post("/admin/login", data={"key": "mtr_guess"}, headers=guesser)).status
        elif n % 3 == 1:
            status = (await proxied.get("/admin/api/tables",
                                        headers={**guesser, "Authorization": "Bearer mtr_guess"})).status
        else:
            ws = await proxied.ws_connect(f"{SOCKET}?token=mtr_guess", headers=guesser)
            status = 401 if (await ws.receive_json())["code"] == "unauthorized" else 0
            await ws.close()
        assert status == 401, n
    good = {**guesser, "Authorization": f"Bearer {bistro_place.admin}"}
    assert (await proxied.get("/admin/api/tables", headers=good)).status == 429  # even with a good key, for now
    refused = await proxied.post("/admin/login", data={"key": bistro_place.admin}, headers=guesser)
    assert refused.status == 429 and "Wait a minute" in await refused.text()
    with pytest.raises(Exception, match="429"):
        await proxied.ws_connect(f"{SOCKET}?token={bistro_place.admin}", headers=guesser)
    someone_else = behind_tls("192.0.2.67")
    assert (await proxied.get("/admin/api/tables", headers={
        **someone_else, "Authorization": f"Bearer {bistro_place.admin}"})).status == 200
    assert (await proxied.post("/admin/login", data={"key": bistro_place.admin}, headers=someone_else,
                               allow_redirects=False)).status == 303


async def test_good_keys_do_not_use_up_the_allowance(client, bistro_place):
    for _ in range(30):
        assert (await client.get("/admin/api/tables",
                                 headers={"Authorization": f"Bearer {bistro_place.admin}"})).status == 200
    assert (await sign_in(client, bistro_place.admin)).status == 303


async def test_a_forged_x_forwarded_for_from_an_untrusted_peer_changes_nothing(client, bistro_place):
    # the server trusts no proxy: every guess counts against the real peer, whatever it claims to be
    for n in range(10):
        response = await client.get("/admin/api/tables", headers={
            "Authorization": "Bearer mtr_guess", "X-Forwarded-For": f"192.0.2.{n}"})
        assert response.status == 401
    forged = await client.post("/admin/login", data={"key": bistro_place.admin},
                               headers={"Origin": origin(client), "X-Forwarded-For": "192.0.2.200"})
    assert forged.status == 429


async def test_the_access_log_names_the_client_not_the_proxy(aiohttp_client, settings, caplog):
    trusted = dataclasses.replace(settings, trusted_proxies=(ip_network("127.0.0.1"),))
    server = TestServer(create_app(trusted))
    await server.start_server(access_log_class=AccessLogger)  # run.py's access log
    client = await aiohttp_client(server)
    with caplog.at_level(logging.INFO, logger="aiohttp.access"):
        await client.get("/healthz", headers=behind_tls("192.0.2.7"))
        await client.get("/healthz", headers={"X-Forwarded-For": "192.0.2.8"})
    lines = [record.getMessage() for record in caplog.records if record.name == "aiohttp.access"]
    assert [line.split()[0] for line in lines[-2:]] == ["192.0.2.7", "192.0.2.8"]


async def test_guesses_sent_all_at_once_are_counted_too(proxied, bistro_place):
    guesser = behind_tls("192.0.2.77")

    async def guess(n: int) -> int:
        response = await proxied.get("/admin/api/tables", headers={**guesser, "Authorization": f"Bearer mtr_{n}"})
        return response.status

    assert await guess(0) == 401  # a first wrong key: from now on this client's attempts are counted first
    statuses = await asyncio.gather(*(guess(n) for n in range(1, 30)))
    assert sorted(statuses) == [401] * 9 + [429] * 20


async def test_a_client_that_never_got_a_key_wrong_is_not_held_up_by_the_limit(proxied, bistro_place):
    script = {**behind_tls("192.0.2.78"), "Authorization": f"Bearer {bistro_place.admin}"}
    statuses = await asyncio.gather(*(proxied.get("/admin/api/tables", headers=script) for _ in range(40)))
    assert [response.status for response in statuses] == [200] * 40


async def test_a_phone_rotating_through_its_ipv6_64_is_still_one_phone(proxied, bistro_place):
    for n in range(10):
        response = await proxied.get("/admin/api/tables", headers={
            "X-Forwarded-For": f"2001:db8:5:6::{n + 1:x}", "Authorization": "Bearer mtr_guess"})
        assert response.status == 401
    other_address_same_64 = {"X-Forwarded-For": "2001:db8:5:6:ffff::1", "Authorization": "Bearer mtr_guess"}
    assert (await proxied.get("/admin/api/tables", headers=other_address_same_64)).status == 429
    another_network = {"X-Forwarded-For": "2001:db8:5:7::1", "Authorization": f"Bearer {bistro_place.admin}"}
    assert (await proxied.get("/admin/api/tables", headers=another_network)).status == 200
