"""Syncing from private registries: Basic (htpasswd) and Docker token auth, and what a user
sees when the credentials are wrong."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from protos import mirror_pb2 as pb
from tests.integration.sync_helpers import (
    REGISTRY_MARKS,
    Mirror,
    Upstream,
    assert_storage_sound,
    small_image,
)
from tests.integration.sync_helpers import mirror_fixture as mirror_fixture
from tests.integration.sync_helpers import upstream_name_fixture as upstream_name_fixture
from tests.support import images as img
from tests.support.registry import RegistryProcess

pytestmark = REGISTRY_MARKS

USER, PASSWORD = "puller", "s3cret-pw"
WRONG = "not-the-password-x9"


@pytest.fixture(scope="module")
def htpasswd_registry() -> Iterator[RegistryProcess]:
    with RegistryProcess("htpasswd", users={USER: PASSWORD}) as reg:
        yield reg


@pytest.fixture(scope="module")
def token_registry() -> Iterator[RegistryProcess]:
    # The owned token issuer runs in a background thread (sync start), so one registry
    # serves every test of the module whatever its event loop.
    with RegistryProcess("token", users={USER: PASSWORD}) as reg:
        yield reg


@pytest.fixture(params=["htpasswd", "token"])
def private_registry(
    request: pytest.FixtureRequest,
    htpasswd_registry: RegistryProcess,
    token_registry: RegistryProcess,
) -> RegistryProcess:
    return htpasswd_registry if request.param == "htpasswd" else token_registry


async def push_private(reg: RegistryProcess, name: str) -> Upstream:
    upstream = Upstream(reg.url, name, auth=reg.credentials)
    await upstream.push("v1", small_image("private-1"))
    await upstream.push("multi", img.make_index("private-multi", img.PLATFORMS[:2], layer_size=256))
    return upstream


async def test_sync_with_correct_credentials(
    mirror: Mirror, private_registry: RegistryProcess, upstream_name: str
) -> None:
    upstream = await push_private(private_registry, upstream_name)
    issuer = private_registry.issuer
    tokens_before = issuer.requests if issuer is not None else 0
    await mirror.setup(
        "private", private_registry.url, upstream_name, username=USER, password=PASSWORD
    )

    run = await mirror.sync("private")

    assert run.task.state == pb.TASK_STATE_COMPLETED, run.task.error
    assert list(run.task.created_resources) == ["repositories/private/versions/1"]
    await mirror.assert_matches("private", upstream.expected())
    assert assert_storage_sound(mirror.data_dir) == set(upstream.expected().blobs)
    if issuer is not None:
        assert issuer.requests > tokens_before
        mine = [r for r in issuer.request_log[-20:] if r.account == USER and r.status == 200]
        assert mine, "the sync never obtained a token with the remote's credentials"


async def test_sync_with_bad_credentials_fails_unauthenticated(
    mirror: Mirror, private_registry: RegistryProcess, upstream_name: str
) -> None:
    await push_private(private_registry, upstream_name)
    await mirror.create_repository("denied")
    await mirror.create_remote(
        "wrong", private_registry.url, upstream_name, username=USER, password=WRONG
    )
    await mirror.create_remote("anonymous", private_registry.url, upstream_name)

    for remote in ("wrong", "anonymous"):
        run = await mirror.sync("denied", remote)

        task = run.task
        assert task.state == pb.TASK_STATE_FAILED, remote
        assert task.error.code == "UNAUTHENTICATED", (remote, task.error)
        assert task.error.reason.startswith("UPSTREAM_"), (remote, task.error)
        assert list(task.created_resources) == []
        # A secret never comes back, not even in an error.
        assert WRONG not in str(task)
    assert (await mirror.repository("denied")).latest_version_number == 0
    assert await mirror.version_numbers("denied") == [0]
    assert_storage_sound(mirror.data_dir)


async def test_literal_include_list_with_auth(
    mirror: Mirror, private_registry: RegistryProcess, upstream_name: str
) -> None:
    """A literal include list makes the first upstream requests concurrent HEADs without
    credentials: every one of their 401s must lead to a retry with credentials (Basic, or a
    token), never to a refusal."""
    upstream = Upstream(private_registry.url, upstream_name, auth=private_registry.credentials)
    for tag in ("a", "b", "c"):
        await upstream.push(tag, small_image(f"literal-auth-{tag}", layer_size=256))
    await mirror.setup(
        "literal-auth",
        private_registry.url,
        upstream_name,
        username=USER,
        password=PASSWORD,
        include_tags=["a", "b", "c"],
    )

    run = await mirror.sync("literal-auth")

    assert run.task.state == pb.TASK_STATE_COMPLETED, run.task.error
    await mirror.assert_matches("literal-auth", upstream.expected())
