"""Access control of the gRPC API beyond the role matrix: revocation of an open stream, the
audit log, the first start (admin token, file modes), `--no-auth`, TLS and mTLS."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from client import AsyncMirrorClient, MirrorClientError
from client.auth import channel_credentials, read_token_file, resolve_token
from protos import mirror_pb2 as pb
from server.app import build_services, check_no_auth, start_grpc
from server.config import Settings
from tests.support.access import principal_with_token
from tests.support.certs import CertificateAuthority


@pytest.fixture
async def hanging_url() -> AsyncIterator[str]:
    """An upstream that accepts connections and never answers: its syncs run until
    cancelled."""

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.read()
        finally:
            writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()


def audit_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "mirror.audit"]


async def test_revoking_a_token_ends_its_open_watch_stream(
    grpc_target: str, admin_token: str, hanging_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mirror.audit")
    async with AsyncMirrorClient(grpc_target, timeout=10, token=admin_token) as admin:
        await admin.create_repository("codzo")
        await admin.create_remote("slow", hanging_url, "library/x", max_retries=0)
        task = await admin.start_sync("codzo", "slow")
        watcher_token = await principal_with_token(admin, "watcher", "viewer")
        spare = (await admin.create_token("watcher", "second token")).secret
        token_name = (await admin.list_tokens("watcher")).tokens[0].name

        async with AsyncMirrorClient(grpc_target, timeout=10, token=watcher_token) as watcher:
            stream = watcher.watch_task(task.name)
            first = await anext(stream)
            assert first.kind == pb.TASK_EVENT_KIND_SNAPSHOT
            await admin.delete_token(token_name)
            # The stream ends at once (well before the 5 s periodic re-check), and with it
            # UNAUTHENTICATED; the task itself runs on.
            with pytest.raises(MirrorClientError) as ended:
                async with asyncio.timeout(3):
                    async for _event in stream:
                        pass
            assert ended.value.code is grpc.StatusCode.UNAUTHENTICATED
            with pytest.raises(MirrorClientError) as again:
                await watcher.get_task(task.name)
            assert again.value.code is grpc.StatusCode.UNAUTHENTICATED
        assert (await admin.get_task(task.name)).state == pb.TASK_STATE_RUNNING

        # The principal's other token still works; demoting it ends its stream with
        # PERMISSION_DENIED... and deleting the principal ends it UNAUTHENTICATED.
        async with AsyncMirrorClient(grpc_target, timeout=10, token=spare) as watcher:
            stream = watcher.watch_task(task.name)
            await anext(stream)
            await admin.delete_principal("watcher")
            with pytest.raises(MirrorClientError) as ended:
                async with asyncio.timeout(3):
                    async for _event in stream:
                        pass
            assert ended.value.code is grpc.StatusCode.UNAUTHENTICATED
        await admin.cancel_task(task.name)

    lines = audit_lines(caplog)
    assert any(
        "principal=admin method=/mirror.v1.AccessService/DeleteToken" in line
        and f"resource={token_name}" in line
        and "result=OK" in line
        for line in lines
    ), lines
    assert any(
        "method=/mirror.v1.TaskService/GetTask" in line and "result=UNAUTHENTICATED" in line
        for line in lines
    ), lines
    for secret in (admin_token, watcher_token, spare):
        assert not any(secret in r.getMessage() for r in caplog.records)


async def test_first_start_writes_the_admin_token_and_private_files(
    tmp_path: Path, database_url: str
) -> None:
    data = tmp_path / "fresh" / "data"
    sqlite = "sqlite" in database_url
    settings = Settings(data_dir=data, database_url="" if sqlite else database_url)
    old = os.umask(0o022)  # a permissive umask must not matter
    try:
        async with build_services(settings) as services:
            token = read_token_file(settings.admin_token_file)
            assert (await services.access.authenticate(token)).name == "admin"
    finally:
        os.umask(old)
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    assert mode(data) == 0o700
    for name in ("admin-token", "secret.key", "registry-token.key"):
        assert mode(data / name) == 0o600, name
    if sqlite:
        assert mode(data / "mirror.db") == 0o600
        for extra in data.glob("mirror.db-*"):  # WAL and shared memory, when left
            assert mode(extra) == 0o600, extra
    # A second start neither re-creates admin nor rewrites the token.
    async with build_services(settings) as services:
        assert [p.name for p in (await services.access.list_principals(10, None))[0]] == ["admin"]
    assert read_token_file(settings.admin_token_file) == token
    # mirrorctl's precedence: flag, MIRROR_TOKEN, MIRROR_TOKEN_FILE, ./.mirror-data/admin-token
    cwd = data.parent
    (cwd / ".mirror-data").mkdir()
    (cwd / ".mirror-data" / "admin-token").write_text("from-cwd\n")
    (cwd / "file-token").write_text("from-file\n")
    file_env = {"MIRROR_TOKEN_FILE": str(cwd / "file-token")}
    assert resolve_token("flag", {"MIRROR_TOKEN": "env", **file_env}, cwd) == "flag"
    assert resolve_token(None, {"MIRROR_TOKEN": "env", **file_env}, cwd) == "env"
    assert resolve_token(None, file_env, cwd) == "from-file"
    assert resolve_token(None, {}, cwd) == "from-cwd"
    assert resolve_token(None, {}, tmp_path) is None


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_no_auth_only_on_loopback(settings: Settings) -> None:
    for address in ("0.0.0.0:50051", "10.1.2.3:50051", "[::]:50051"):
        with pytest.raises(SystemExit, match="refusing --no-auth"):
            check_no_auth(dataclasses.replace(settings, no_auth=True, grpc_address=address))
    check_no_auth(dataclasses.replace(settings, no_auth=True, grpc_address="127.0.0.1:1"))
    check_no_auth(dataclasses.replace(settings, no_auth=True, grpc_address="[::1]:1"))
    # With --no-auth a caller without credentials may do everything (that is the point).
    async with build_services(dataclasses.replace(settings, no_auth=True)) as services:
        server, port = await start_grpc(services, "127.0.0.1:0")
        try:
            async with AsyncMirrorClient(f"127.0.0.1:{port}", timeout=10) as anonymous:
                await anonymous.create_repository("open")
                await anonymous.create_principal("someone", "viewer")
        finally:
            await server.stop(None)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_tls_and_mtls_on_grpc(settings: Settings, tmp_path: Path) -> None:
    ca = CertificateAuthority(tmp_path / "pki")
    server_cert = ca.issue("server", "mirror", server=True)
    tls = dataclasses.replace(settings, tls_cert=server_cert.cert, tls_key=server_cert.key)
    async with build_services(tls) as services:
        server, port = await start_grpc(services, "127.0.0.1:0")
        target = f"127.0.0.1:{port}"
        token = read_token_file(tls.admin_token_file)
        try:
            credentials = channel_credentials(ca.cert)
            async with AsyncMirrorClient(
                target, timeout=10, token=token, credentials=credentials
            ) as client:
                await client.create_repository("over-tls")
                await client.create_principal("ci-bot", "viewer")
            async with AsyncMirrorClient(target, timeout=5, token=token) as plaintext:
                with pytest.raises(MirrorClientError) as refused:
                    await plaintext.list_repositories()
                assert refused.value.code is grpc.StatusCode.UNAVAILABLE
            # Without the token, TLS alone identifies nobody.
            async with AsyncMirrorClient(target, timeout=5, credentials=credentials) as nobody:
                with pytest.raises(MirrorClientError) as refused:
                    await nobody.list_repositories()
                assert refused.value.code is grpc.StatusCode.UNAUTHENTICATED
        finally:
            await server.stop(None)

    # mTLS: a client certificate signed by the client CA authenticates as the principal its
    # common name names; an unknown name is UNAUTHENTICATED; no certificate, no connection.
    mtls = dataclasses.replace(tls, tls_client_ca=ca.cert)
    bot = ca.issue("ci-bot", "ci-bot", server=False)
    stranger = ca.issue("stranger", "stranger", server=False)
    async with build_services(mtls) as services:
        server, port = await start_grpc(services, "127.0.0.1:0")
        target = f"127.0.0.1:{port}"
        try:
            as_bot = channel_credentials(ca.cert, bot.cert, bot.key)
            async with AsyncMirrorClient(target, timeout=10, credentials=as_bot) as client:
                listed = await client.list_repositories()
                assert [r.name for r in listed.repositories] == ["repositories/over-tls"]
                with pytest.raises(MirrorClientError) as denied:
                    await client.create_repository("nope")
                assert denied.value.code is grpc.StatusCode.PERMISSION_DENIED
            as_stranger = channel_credentials(ca.cert, stranger.cert, stranger.key)
            async with AsyncMirrorClient(target, timeout=10, credentials=as_stranger) as client:
                with pytest.raises(MirrorClientError) as refused:
                    await client.list_repositories()
                assert refused.value.code is grpc.StatusCode.UNAUTHENTICATED
            no_cert = channel_credentials(ca.cert)
            async with AsyncMirrorClient(target, timeout=5, credentials=no_cert) as client:
                with pytest.raises(MirrorClientError) as refused:
                    await client.list_repositories()
                assert refused.value.code is grpc.StatusCode.UNAVAILABLE
        finally:
            await server.stop(None)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_copy_needs_read_on_the_source_and_mirror_mode_needs_admin(
    grpc_target: str, admin_token: str
) -> None:
    async with AsyncMirrorClient(grpc_target, timeout=10, token=admin_token) as admin:
        for name in ("a", "b"):
            await admin.create_repository(name)
        token = await principal_with_token(admin, "copier", grants={"b": "editor"})
        async with AsyncMirrorClient(grpc_target, timeout=10, token=token) as copier:
            copy = ("repositories/a/versions/0", "repositories/b", ["t"])
            with pytest.raises(MirrorClientError) as denied:
                await copier.copy_tags(*copy)
            assert denied.value.code is grpc.StatusCode.PERMISSION_DENIED
            assert denied.value.metadata["repository"] == "repositories/a"
            await admin.create_grant("copier", "a", "viewer")
            with pytest.raises(MirrorClientError) as missing:  # allowed: the tag is unknown
                await copier.copy_tags(*copy)
            assert missing.value.code is grpc.StatusCode.NOT_FOUND
            # An editor may update its repository, but not turn mirror mode on or off.
            await copier.update_repository("b", description="ok")
            with pytest.raises(MirrorClientError) as denied:
                await copier.update_repository("b", mirror=True)
            assert denied.value.code is grpc.StatusCode.PERMISSION_DENIED
        await admin.update_repository("b", mirror=True)
