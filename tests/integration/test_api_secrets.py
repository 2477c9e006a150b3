"""Write-only secrets: no response and no log record ever carries a password or a key.

A remote is created with a password, a proxy password and a client key; every response
that shows it (create, get, list, update) and every task of syncs that use those
credentials is serialized whole and searched, and so is every log record the process
writes meanwhile (message, arguments and traceback) with logging at DEBUG.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field

import grpc
import pytest
from aiohttp import web
from google.protobuf import json_format
from google.protobuf.message import Message

from client import AsyncMirrorClient, MirrorClientError
from protos import mirror_pb2 as pb
from tests.integration.api_helpers import dead_url

PASSWORD = "pw-S3CRET-1"
PROXY_PASSWORD = "pw-S3CRET-2"
CLIENT_KEY = "pw-S3CRET-3"
NEW_PASSWORD = "pw-S3CRET-4"
SECRETS = (PASSWORD, PROXY_PASSWORD, CLIENT_KEY, NEW_PASSWORD)
CERTIFICATE = "-----BEGIN CERTIFICATE-----\nMIIBnotreallyacertificate\n-----END CERTIFICATE-----\n"
KEY = f"-----BEGIN PRIVATE KEY-----\n{CLIENT_KEY}\n-----END PRIVATE KEY-----\n"


def as_json(messages: Iterable[Message]) -> str:
    return "\n".join(json_format.MessageToJson(m) for m in messages)


def assert_no_secret(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret} found in {where}: {text}"


def record_texts(records: Iterable[logging.LogRecord]) -> Iterable[tuple[str, str]]:
    """(logger, text) of every part of every record a handler could print."""
    formatter = logging.Formatter()
    for record in records:
        parts = [str(record.msg), repr(record.args)]
        try:
            parts.append(record.getMessage())
        except Exception as exc:  # a broken record is a failure of its own
            parts.append(f"unformattable: {exc!r}")
        if record.exc_info:
            parts.append(formatter.formatException(record.exc_info))
        if record.exc_text:
            parts.append(record.exc_text)
        if record.stack_info:
            parts.append(record.stack_info)
        yield record.name, "\n".join(parts)


def debug_everywhere(caplog: pytest.LogCaptureFixture) -> None:
    """DEBUG for the root logger and every logger that exists, as `--log-level DEBUG` does.

    Except SQLAlchemy's: it deliberately pins its own loggers to WARNING (its SQL echo would
    print every bound parameter) and the server never turns them up, whatever its level.
    """
    caplog.set_level(logging.DEBUG)
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger) and not name.startswith("sqlalchemy"):
            caplog.set_level(logging.DEBUG, logger=name)


# The SQLite driver's own DEBUG records are checked by their own test below.
DRIVER_LOGGERS = ("aiosqlite",)


@dataclass
class Challenger:
    """An upstream (and proxy) that answers every request 401 with a Basic challenge."""

    url: str = ""
    authorizations: list[str] = field(default_factory=list)
    proxy_authorizations: list[str] = field(default_factory=list)


@pytest.fixture
async def challenger() -> AsyncIterator[Challenger]:
    state = Challenger()

    async def deny(request: web.Request) -> web.Response:
        state.authorizations.append(request.headers.get("Authorization", ""))
        state.proxy_authorizations.append(request.headers.get("Proxy-Authorization", ""))
        return web.Response(
            status=401,
            headers={"WWW-Authenticate": 'Basic realm="mirror-test"'},
            text='{"errors":[{"code":"UNAUTHORIZED","message":"no"}]}',
            content_type="application/json",
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", deny)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state.url = f"http://127.0.0.1:{port}"
    try:
        yield state
    finally:
        await runner.cleanup()


async def finished(client: AsyncMirrorClient, name: str) -> list[pb.WatchTaskResponse]:
    async with asyncio.timeout(30):
        events = [event async for event in client.watch_task(name)]
    assert events[-1].task.state in (pb.TASK_STATE_FAILED, pb.TASK_STATE_COMPLETED)
    return events


async def test_secrets_never_leave_the_server(
    grpc_target: str, admin_token: str, challenger: Challenger, caplog: pytest.LogCaptureFixture
) -> None:
    debug_everywhere(caplog)
    seen: list[Message] = []
    async with AsyncMirrorClient(grpc_target, timeout=10, token=admin_token) as client:
        created = await client.create_remote(
            "secret",
            dead_url(),
            "library/hello-world",
            username="bob",
            password=PASSWORD,
            proxy_url=dead_url(),
            proxy_username="proxy-bob",
            proxy_password=PROXY_PASSWORD,
            ssl_client_certificate=CERTIFICATE,
            ssl_client_key=KEY,
            max_retries=0,
        )
        seen.append(created)
        assert (created.password_set, created.proxy_password_set, created.ssl_client_key_set) == (
            True,
            True,
            True,
        )
        assert (created.password, created.proxy_password, created.ssl_client_key) == ("", "", "")
        assert created.ssl_client_certificate == CERTIFICATE  # not a secret: returned
        assert (created.username, created.proxy_username) == ("bob", "proxy-bob")

        got = await client.get_remote("secret")
        listed = await client.list_remotes()
        seen += [got, listed]
        assert got.password_set and got.proxy_password_set and got.ssl_client_key_set
        assert [r.password_set for r in listed.remotes] == [True]

        # Updating other fields keeps the secrets (still unseen); a new password replaces one.
        updated = await client.update_remote("secret", username="alice")
        seen.append(updated)
        assert updated.password_set and updated.proxy_password_set and updated.ssl_client_key_set
        updated = await client.update_remote("secret", password=NEW_PASSWORD)
        seen.append(updated)
        assert updated.password_set and updated.username == "alice"

        # Syncs that use the credentials: the first cannot load its (fake) TLS key, the second
        # sends the password and proxy password to an upstream that keeps answering 401, the
        # third meets a dead port.
        await client.create_repository("codzo")
        tasks = [await client.start_sync("codzo", "secret")]
        seen += await finished(client, tasks[0].name)

        await client.create_remote(
            "challenged",
            challenger.url,
            "library/hello-world",
            username="bob",
            password=PASSWORD,
            proxy_url=challenger.url,
            proxy_username="proxy-bob",
            proxy_password=PROXY_PASSWORD,
            max_retries=0,
        )
        tasks.append(await client.start_sync("codzo", "challenged"))
        seen += await finished(client, tasks[1].name)
        assert any(a.startswith("Basic ") for a in challenger.authorizations), (
            "the password was never sent upstream"
        )

        await client.create_remote(
            "dead",
            dead_url(),
            "library/hello-world",
            username="bob",
            password=PASSWORD,
            proxy_password=PROXY_PASSWORD,
            ssl_validation=False,
            max_retries=0,
        )
        tasks.append(await client.start_sync("codzo", "dead"))
        seen += await finished(client, tasks[2].name)

        for task in tasks:
            final = await client.get_task(task.name)
            assert final.state == pb.TASK_STATE_FAILED, final
            seen.append(final)
        seen.append(await client.list_tasks())
        seen.append(await client.list_remotes())

        # A rejected update echoes nothing either.
        with pytest.raises(MirrorClientError) as info:
            await client.update_remote("secret", password=NEW_PASSWORD, url="ftp://nope")
        assert info.value.code is grpc.StatusCode.INVALID_ARGUMENT
        assert_no_secret(str(info.value), "an error")
        assert_no_secret(repr(info.value.status), "an error status")

    assert_no_secret(as_json(seen), "a response")
    assert len(caplog.records) > 10, "logging was not captured"
    for logger, text in record_texts(caplog.records):
        if not logger.startswith(DRIVER_LOGGERS):
            assert_no_secret(text, f"a log record of {logger}")


async def test_debug_logging_of_the_database_driver_carries_no_secret(
    grpc_target: str,
    admin_token: str,
    database_url: str,
    request: pytest.FixtureRequest,
    caplog: pytest.LogCaptureFixture,
) -> None:
    debug_everywhere(caplog)
    async with AsyncMirrorClient(grpc_target, timeout=10, token=admin_token) as client:
        remote = await client.create_remote(
            "secret",
            "https://registry.example.com",
            "library/hello-world",
            username="bob",
            password=PASSWORD,
            proxy_password=PROXY_PASSWORD,
            ssl_client_certificate=CERTIFICATE,
            ssl_client_key=KEY,
        )
        assert remote.password_set
        await client.get_remote("secret")
    assert caplog.records, "logging was not captured"
    for logger, text in record_texts(caplog.records):
        assert_no_secret(text, f"a log record of {logger}")


# Independent of the database: the SQLite run is enough.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_proxy_password_reaches_an_http_proxy(
    grpc_target: str, admin_token: str, challenger: Challenger
) -> None:
    async with AsyncMirrorClient(grpc_target, timeout=10, token=admin_token) as client:
        await client.create_repository("codzo")
        await client.create_remote(
            "proxied",
            dead_url(),  # never contacted directly: every request goes to the proxy
            "library/hello-world",
            proxy_url=challenger.url,
            proxy_username="proxy-bob",
            proxy_password=PROXY_PASSWORD,
            max_retries=0,
        )
        task = await client.start_sync("codzo", "proxied")
        await finished(client, task.name)
    assert challenger.proxy_authorizations, "the proxy was never asked"
    assert any(a.startswith("Basic ") for a in challenger.proxy_authorizations), (
        f"no Proxy-Authorization in {challenger.proxy_authorizations}"
    )


async def test_secrets_stay_out_of_the_log_when_the_database_fails(
    grpc_target: str,
    admin_token: str,
    database_url: str,
    request: pytest.FixtureRequest,
    caplog: pytest.LogCaptureFixture,
) -> None:
    debug_everywhere(caplog)
    async with AsyncMirrorClient(grpc_target, timeout=10, token=admin_token) as client:
        try:
            await client.create_remote(
                "secret",
                "https://registry.example.com",
                "library/hello-world",
                username="bob\x00",
                password=PASSWORD,
                proxy_password=PROXY_PASSWORD,
                ssl_client_certificate=CERTIFICATE,
                ssl_client_key=KEY,
            )
        except MirrorClientError as err:
            assert_no_secret(str(err), "an error")
    for logger, text in record_texts(caplog.records):
        if not logger.startswith(DRIVER_LOGGERS):
            assert_no_secret(text, f"a log record of {logger}")
