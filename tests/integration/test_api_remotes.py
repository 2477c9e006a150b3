"""RemoteService acceptance tests through the asyncio client against the real server."""

from __future__ import annotations

import asyncio
import uuid

import grpc
from google.protobuf import field_mask_pb2

from client import AsyncMirrorClient
from protos import mirror_pb2 as pb
from protos import mirror_pb2_grpc as pb_grpc
from tests.integration.api_helpers import fails, when

URL = "https://registry.example.com:5000"


async def test_create_get_and_duplicate_remote(grpc_target: str, admin_token: str) -> None:
    async with AsyncMirrorClient(grpc_target, timeout=10, token=admin_token) as client:
        remote = await client.create_remote("hub", URL, "library/hello-world")
        assert remote.name == "remotes/hub"
        assert str(uuid.UUID(remote.uid)) == remote.uid
        assert remote.url == URL
        assert remote.upstream_name == "library/hello-world"
        assert remote.policy == pb.POLICY_IMMEDIATE  # unspecified on create means IMMEDIATE
        assert remote.download_concurrency == 10
        assert remote.max_retries == 3
        assert remote.ssl_validation is True
        assert list(remote.include_tags) == [] and list(remote.exclude_tags) == []
        assert not (remote.password_set or remote.proxy_password_set or remote.ssl_client_key_set)
        assert when(remote.create_time) == when(remote.update_time)
        assert await client.get_remote("remotes/hub") == remote

        err = await fails(
            client.create_remote("hub", URL, "library/busybox"),
            grpc.StatusCode.ALREADY_EXISTS,
            "REMOTE_EXISTS",
        )
        assert err.metadata.get("remote") == "remotes/hub"
        assert await client.get_remote("hub") == remote

        # Every input field round-trips.
        await round_trips_every_field(client)


async def round_trips_every_field(client: AsyncMirrorClient) -> None:
    fields: dict[str, object] = {
        "policy": "on_demand",
        "include_tags": ["1.*", "v[0-9]*", "sha256:" + "ab" * 32],
        "exclude_tags": ["*-rc*"],
        "download_concurrency": 5,
        "max_retries": 0,
        "sigstore": "https://sigstore.example.com/sigs",
        "proxy_url": "http://proxy.example.com:3128",
        "proxy_username": "proxy-user",
        "username": "bob",
        "ssl_validation": False,
        "ssl_ca_certificate": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        "connect_timeout": 1.5,
        "sock_read_timeout": 2.5,
        "total_timeout": 30.0,
        "headers": {"X-Mirror": "yes", "User-Agent": "mirror-test"},
        "include_foreign_layers": True,
        "rate_limit": 4.0,
        "token_realm_allowlist": ["auth.example.com"],
        "signed_only": True,
    }
    remote = await client.create_remote("full", URL, "library/alpine", **fields)
    assert remote.policy == pb.POLICY_ON_DEMAND
    assert list(remote.include_tags) == fields["include_tags"]
    assert list(remote.exclude_tags) == ["*-rc*"]
    assert remote.download_concurrency == 5
    assert remote.HasField("max_retries") and remote.max_retries == 0
    assert remote.sigstore == fields["sigstore"]
    assert remote.proxy_url == fields["proxy_url"]
    assert remote.proxy_username == "proxy-user"
    assert remote.username == "bob"
    assert remote.HasField("ssl_validation") and remote.ssl_validation is False
    assert remote.ssl_ca_certificate == fields["ssl_ca_certificate"]
    assert (remote.connect_timeout, remote.sock_read_timeout, remote.total_timeout) == (
        1.5,
        2.5,
        30.0,
    )
    # Header values are write-only, like passwords: only their names come back.
    assert dict(remote.headers) == {}
    assert list(remote.header_names) == sorted(fields["headers"])
    assert remote.include_foreign_layers is True
    assert remote.rate_limit == 4.0
    assert list(remote.token_realm_allowlist) == ["auth.example.com"]
    assert remote.signed_only is True
    assert await client.get_remote("full") == remote


async def test_update_remote_changes_only_masked_fields(grpc_target: str, admin_token: str) -> None:
    async with AsyncMirrorClient(grpc_target, timeout=10, token=admin_token) as client:
        created = await client.create_remote(
            "hub",
            URL,
            "library/alpine",
            include_tags=["3.*"],
            download_concurrency=4,
            username="bob",
            password="hunter2",
        )
        await asyncio.sleep(0.01)

        updated = await client.update_remote("hub", exclude_tags=["*-rc*"])
        assert list(updated.exclude_tags) == ["*-rc*"]
        assert list(updated.include_tags) == ["3.*"]
        assert updated.download_concurrency == 4
        assert (updated.username, updated.password_set) == ("bob", True)
        assert (updated.url, updated.upstream_name) == (URL, "library/alpine")
        assert updated.uid == created.uid
        assert updated.create_time == created.create_time
        assert when(updated.update_time) > when(created.update_time)
        assert await client.get_remote("hub") == updated

        # None puts the field in the mask unset: back to the server default.
        reset = await client.update_remote("hub", download_concurrency=None)
        assert reset.download_concurrency == 10
        assert list(reset.exclude_tags) == ["*-rc*"]

        # Populated fields outside the mask are ignored.
        stub = pb_grpc.RemoteServiceStub(client.channel)
        response = await stub.UpdateRemote(
            pb.UpdateRemoteRequest(
                remote=pb.Remote(
                    name="remotes/hub",
                    url="https://elsewhere.example.com",
                    upstream_name="library/busybox",
                    include_tags=["latest"],
                ),
                update_mask=field_mask_pb2.FieldMask(paths=["include_tags"]),
            )
        )
        got = response.remote
        assert list(got.include_tags) == ["latest"]
        assert (got.url, got.upstream_name) == (URL, "library/alpine")
        assert got.password_set is True

        # An empty password in the mask removes the password.
        cleared = await client.update_remote("hub", password=None)
        assert cleared.password_set is False
        assert cleared.username == "bob"


async def test_list_remotes_paginates_in_name_order(grpc_target: str, admin_token: str) -> None:
    async with AsyncMirrorClient(grpc_target, timeout=10, token=admin_token) as client:
        for rid in ("c", "a", "e", "b", "d"):
            await client.create_remote(rid, URL, f"library/{rid}")
        first = await client.list_remotes(page_size=2)
        assert [r.name for r in first.remotes] == ["remotes/a", "remotes/b"]
        assert first.next_page_token
        second = await client.list_remotes(page_size=2, page_token=first.next_page_token)
        assert [r.name for r in second.remotes] == ["remotes/c", "remotes/d"]
        assert second.next_page_token
        third = await client.list_remotes(page_size=2, page_token=second.next_page_token)
        assert [r.name for r in third.remotes] == ["remotes/e"]
        assert third.next_page_token == ""
        assert [r.upstream_name for r in third.remotes] == ["library/e"]


async def test_delete_remote(grpc_target: str, admin_token: str) -> None:
    async with AsyncMirrorClient(grpc_target, timeout=10, token=admin_token) as client:
        first = await client.create_remote("hub", URL, "library/alpine")
        await client.delete_remote("remotes/hub")
        err = await fails(client.get_remote("hub"), grpc.StatusCode.NOT_FOUND, "REMOTE_NOT_FOUND")
        assert err.metadata.get("remote") == "remotes/hub"
        await fails(client.delete_remote("hub"), grpc.StatusCode.NOT_FOUND, "REMOTE_NOT_FOUND")
        await fails(
            client.update_remote("hub", username="x"),
            grpc.StatusCode.NOT_FOUND,
            "REMOTE_NOT_FOUND",
        )
        assert list((await client.list_remotes()).remotes) == []
        again = await client.create_remote("hub", URL, "library/alpine")
        assert again.uid != first.uid
