"""Secrets stay secret: the url-change attack, encryption at rest with key rotation, and a
canary grep over everything the server writes or answers.

The attack (issue 9): update only a remote's `url` to a host the attacker listens on; the
next sync must not present the stored password or header values there. The listener runs on
127.0.0.2, another loopback address, as a second host would.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import grpc
import pytest
from aiohttp import web
from google.protobuf import json_format
from google.protobuf.message import Message

from client import AsyncMirrorClient, MirrorClientError
from client.auth import read_token_file
from server.app import build_services, rotate_secret_key, start_grpc
from server.config import Settings
from tests.conftest import _asyncpg_dsn
from tests.integration.test_api_secrets import debug_everywhere, record_texts

CANARY_PASSWORD = "canary-PW-7f3a9c"
CANARY_HEADER = "canary-HDR-51be02"
CANARY_PROXY = "canary-PROXY-c0ffee"
CANARY_KEY = "canary-KEY-d15ea5e"
CANARIES = (CANARY_PASSWORD, CANARY_HEADER, CANARY_PROXY, CANARY_KEY)
KEY_PEM = f"-----BEGIN PRIVATE KEY-----\n{CANARY_KEY}\n-----END PRIVATE KEY-----\n"


@dataclass
class Listener:
    """An HTTP server that records every request and answers 401 with a Basic challenge
    (the answer that makes a client present whatever credentials it holds)."""

    url: str = ""
    requests: list[dict[str, str]] = field(default_factory=list)


async def _listen(host: str) -> tuple[Listener, web.AppRunner]:
    state = Listener()

    async def record(request: web.Request) -> web.Response:
        state.requests.append(dict(request.headers))
        return web.Response(
            status=401,
            headers={"WWW-Authenticate": 'Basic realm="listener"'},
            text='{"errors":[{"code":"UNAUTHORIZED","message":"no"}]}',
            content_type="application/json",
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    state.url = f"http://{host}:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    return state, runner


@pytest.fixture
async def upstream() -> AsyncIterator[Listener]:
    """The host the secrets were given for (127.0.0.1)."""
    state, runner = await _listen("127.0.0.1")
    try:
        yield state
    finally:
        await runner.cleanup()


@pytest.fixture
async def attacker() -> AsyncIterator[Listener]:
    """Another host: 127.0.0.2."""
    state, runner = await _listen("127.0.0.2")
    try:
        yield state
    finally:
        await runner.cleanup()


async def sync_to_end(client: AsyncMirrorClient, repository: str, remote: str) -> list[Message]:
    async with asyncio.timeout(30):
        return [event async for event in client.sync(repository, remote)]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_url_change_attack_sends_no_secret_to_the_new_host(
    grpc_target: str, admin_token: str, upstream: Listener, attacker: Listener
) -> None:
    async with AsyncMirrorClient(grpc_target, timeout=10, token=admin_token) as client:
        await client.create_repository("codzo")
        await client.create_remote(
            "victim",
            upstream.url,
            "library/app",
            username="bob",
            password=CANARY_PASSWORD,
            headers={"X-Api-Key": CANARY_HEADER},
            max_retries=0,
        )
        await sync_to_end(client, "codzo", "victim")
        assert any(CANARY_HEADER in r.values() for r in upstream.requests)
        assert any(r.get("Authorization", "").startswith("Basic ") for r in upstream.requests)

        # The attack: only the url changes. Refused, naming the fields; nothing changed.
        with pytest.raises(MirrorClientError) as refused:
            await client.update_remote("victim", url=attacker.url)
        assert refused.value.code is grpc.StatusCode.FAILED_PRECONDITION
        assert refused.value.reason == "SECRETS_NOT_RESUPPLIED"
        assert refused.value.metadata["fields"] == "password, headers"
        assert (await client.get_remote("victim")).url == upstream.url
        # Re-supplying one of them is not enough.
        with pytest.raises(MirrorClientError) as refused:
            await client.update_remote("victim", url=attacker.url, password="other")
        assert refused.value.metadata["fields"] == "headers"
        # The same host under another path keeps its secrets (they go where they went).
        await client.update_remote("victim", url=upstream.url + "/")
        # A deliberate move clears the secrets in the same request (and here the user name,
        # so that no Basic header at all is built); the next sync presents nothing there.
        moved = await client.update_remote(
            "victim", url=attacker.url, username=None, password=None, headers=None
        )
        assert not moved.password_set and list(moved.header_names) == []
        await sync_to_end(client, "codzo", "victim")

        # The proxy password follows the same rule.
        await client.update_remote("victim", proxy_url=upstream.url, proxy_password=CANARY_PROXY)
        with pytest.raises(MirrorClientError) as refused:
            await client.update_remote("victim", proxy_url=attacker.url)
        assert refused.value.metadata["fields"] == "proxy_password"

    assert attacker.requests, "the moved remote never reached the new host"
    for headers in attacker.requests:
        assert "Authorization" not in headers, headers
        assert "X-Api-Key" not in headers, headers
        for canary in CANARIES:
            assert all(canary not in value for value in headers.values()), headers


def _grep(data: bytes) -> int:
    return sum(data.count(c.encode()) for c in CANARIES)


def grep_files(directory: Path) -> dict[str, int]:
    """Canary hits per file under `directory` (database, WAL, keys, token, blobs)."""
    return {
        str(path.relative_to(directory)): _grep(path.read_bytes())
        for path in directory.rglob("*")
        if path.is_file()
    }


async def test_canary_secrets_appear_nowhere(
    settings: Settings,
    database_url: str,
    upstream: Listener,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Canaries in every kind of secret; after syncs that use them, key rotation and a
    restart, grep the database (SQLite file and WAL, or PostgreSQL rows), every file of the
    data dir, every log record, every response and event, every error."""
    debug_everywhere(caplog)
    if database_url.startswith("sqlite"):  # the default layout: the database in the data dir
        settings = dataclasses.replace(settings, database_url="")
    seen: list[Message] = []
    errors: list[str] = []
    async with build_services(settings) as services:
        server, port = await start_grpc(services, "127.0.0.1:0")
        target = f"127.0.0.1:{port}"
        token = read_token_file(settings.admin_token_file)
        try:
            async with AsyncMirrorClient(target, timeout=10, token=token) as client:
                seen.append(await client.create_repository("codzo"))
                seen.append(
                    await client.create_remote(
                        "canary",
                        upstream.url,
                        "library/app",
                        username="bob",
                        password=CANARY_PASSWORD,
                        headers={"X-Api-Key": CANARY_HEADER},
                        max_retries=0,
                    )
                )
                # A client key (never loaded: the remote is not synced).
                seen.append(
                    await client.create_remote(
                        "canary-tls",
                        "https://registry.example.com",
                        "library/app",
                        ssl_client_certificate="-----BEGIN CERTIFICATE-----\nx\n-----END "
                        "CERTIFICATE-----\n",
                        ssl_client_key=KEY_PEM,
                    )
                )
                seen.append(await client.get_remote("canary"))
                seen.append(await client.list_remotes())
                seen += await sync_to_end(client, "codzo", "canary")
                seen.append(await client.update_remote("canary", proxy_password=CANARY_PROXY))
                seen.append(await client.list_tasks())
                try:
                    await client.update_remote("canary", url="ftp://x", password=CANARY_PASSWORD)
                except MirrorClientError as err:
                    errors += [str(err), repr(err.status)]
            # While the server runs: SQLite's WAL holds the latest writes.
            running = grep_files(settings.data_dir)
            if database_url.startswith("sqlite"):
                assert "mirror.db-wal" in running, sorted(running)
        finally:
            await server.stop(None)
    assert any(r.get("Authorization", "").startswith("Basic ") for r in upstream.requests)
    assert any(CANARY_HEADER in r.values() for r in upstream.requests)

    # Rotate the key (servers stopped), restart: the secrets still work, sealed anew.
    key_file = settings.effective_secret_key_file
    old_key = key_file.read_bytes()
    await rotate_secret_key(settings)
    assert key_file.read_bytes() != old_key and len(key_file.read_bytes().split()) == 1
    sent_before = len(upstream.requests)
    async with build_services(settings) as services:
        server, port = await start_grpc(services, "127.0.0.1:0")
        try:
            async with AsyncMirrorClient(
                f"127.0.0.1:{port}", timeout=10, token=read_token_file(settings.admin_token_file)
            ) as client:
                seen += await sync_to_end(client, "codzo", "canary")
        finally:
            await server.stop(None)
    after = upstream.requests[sent_before:]
    assert any(r.get("Authorization", "").startswith("Basic ") for r in after)
    assert any(CANARY_HEADER in r.values() for r in after)

    stopped = grep_files(settings.data_dir)
    hits = {f"running: {k}": v for k, v in running.items()}
    hits.update({f"stopped: {k}": v for k, v in stopped.items()})
    files = list(running) + list(stopped)
    if not database_url.startswith("sqlite"):
        conn = await asyncpg.connect(_asyncpg_dsn(database_url))
        try:
            rows = await conn.fetch("SELECT CAST(r AS text) AS t FROM remotes r")
            hits["postgres remotes rows"] = _grep("\n".join(r["t"] for r in rows).encode())
            assert rows
        finally:
            await conn.close()
    else:
        assert (settings.data_dir / "mirror.db").stat().st_size > 0
    hits["responses and events"] = _grep(
        "\n".join(json_format.MessageToJson(m) for m in seen).encode()
    )
    hits["errors"] = _grep("\n".join(errors).encode())
    hits["log records"] = _grep(
        "\n".join(text for _, text in record_texts(caplog.records)).encode()
    )
    assert len(caplog.records) > 10 and len(seen) > 10
    assert {k: v for k, v in hits.items() if v} == {}, hits
    logging.getLogger(__name__).info(
        "canary grep: %d places searched (%d files), %d hits",
        len(hits),
        len(files),
        sum(hits.values()),
    )


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_wrong_secrets_key_is_a_clear_error(settings: Settings, tmp_path: Path) -> None:
    async with build_services(settings) as services:
        await services.remotes.create(
            dataclasses.replace(
                (await _any_remote(services)), remote_id="keyed", password=CANARY_PASSWORD
            )
        )
    other = dataclasses.replace(settings, secret_key_file=tmp_path / "other.key")
    async with build_services(other) as services:
        with pytest.raises(Exception) as info:
            await services.remotes.get("keyed")
    assert getattr(info.value, "reason", "") == "SECRET_KEY_MISMATCH"
    assert CANARY_PASSWORD not in str(info.value)


async def _any_remote(services: object) -> object:
    from server.domain.resources import Remote

    return Remote(remote_id="x", url="https://example.com", upstream_name="lib/x")
