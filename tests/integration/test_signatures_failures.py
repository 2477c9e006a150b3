"""Signature edge cases that once were bugs, kept as regression tests.

- Signature sources that fail mid-sync, even inside concurrent steps: "A signature that
  cannot be fetched never fails the sync: it becomes a warning, counted."
- `exclude_tags` ("Tags never synced", mirror.proto) applies to signature tags too.
- Atomic signature metadata is read from BZip2-compressed OpenPGP messages.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from protos import mirror_pb2 as pb
from tests.support import images as img
from tests.support.faultproxy import FaultProxy
from tests.support.registry import RegistryProcess, registry_available
from tests.support.signatures import (  # noqa: F401
    NOTARY_SIGNATURE,
    ExtensionServer,
    GpgKey,
    LookasideServer,
    MirrorApi,
    api_fixture,
    cosign_tag,
    gpg_key_fixture,
    make_cosign_attestation,
    make_referrer,
    push_two,
    referrer_descriptor,
    registry_fixture,
)

pytestmark = [
    pytest.mark.registry,
    pytest.mark.skipif(not registry_available(), reason="docker-registry is not installed"),
]


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only (overrides the conftest fixture): these cases live in the sync logic, not
    in the database, and the suite must stay fast."""
    return f"sqlite+aiosqlite:///{tmp_path / 'mirror.db'}"


@pytest.fixture
def upstream_name() -> str:
    return f"f{uuid.uuid4().hex[:10]}/app"


async def test_unfetchable_cosign_signature_is_a_warning(
    api: MirrorApi, registry: RegistryProcess, upstream_name: str
) -> None:
    """The HEAD of the signature tag keeps failing (5xx after the retries)."""
    a, b = await push_two(registry.url, upstream_name)
    sig = img.make_cosign_signature(a.digest, "faulty")
    sig_tag = cosign_tag(a.digest, "sig")
    async with img.RegistryClient(registry.url) as client:
        await client.push_image(upstream_name, sig_tag, sig)
    async with FaultProxy(registry.url) as proxy:
        proxy.fail("HEAD", f"/manifests/{sig_tag}", status=500, times=None)
        await api.setup("faulty", proxy.url, upstream_name, include_tags=["1.*"], max_retries=1)

        task = await api.sync("faulty")

    # Today: TASK_STATE_FAILED, UNAVAILABLE/UPSTREAM_UNAVAILABLE "127.0.0.1:<port> answered
    # HTTP 500 for manifest sha256-<hex>.sig". (A 500 on the GET of the signature manifest by
    # digest fails the same way, through Gatherer.walk.)
    assert task.state == pb.TASK_STATE_COMPLETED, task.error
    assert any("cosign" in w for w in task.warnings), list(task.warnings)
    assert await api.tags("faulty") == {"1.0": a.digest, "1.1": b.digest}
    assert await api.signatures("faulty") == []


async def test_missing_referrer_is_a_warning(
    api: MirrorApi, registry: RegistryProcess, upstream_name: str
) -> None:
    """The referrers API lists a signature whose manifest is gone (deleted since, or never
    pushed): the image syncs, the referrer is reported."""
    a, b = await push_two(registry.url, upstream_name)
    real = make_referrer(a, NOTARY_SIGNATURE, b"present")
    ghost = make_referrer(a, NOTARY_SIGNATURE, b"deleted")
    async with img.RegistryClient(registry.url) as client:
        await client.push_image(upstream_name, None, real)
    async with ExtensionServer(registry.url) as ext:
        ext.add_referrer(upstream_name, a.digest, referrer_descriptor(real))
        ext.add_referrer(upstream_name, a.digest, referrer_descriptor(ghost))
        await api.setup("ghost", ext.url, upstream_name, include_tags=["1.*"])

        task = await api.sync("ghost")

    # Today: TASK_STATE_FAILED, FAILED_PRECONDITION/UPSTREAM_MANIFEST_UNKNOWN "manifest
    # sha256:<ghost> is referenced but missing on 127.0.0.1:<port>".
    assert task.state == pb.TASK_STATE_COMPLETED, task.error
    assert any(a.digest in w and "referrers" in w for w in task.warnings), list(task.warnings)
    assert await api.tags("ghost") == {"1.0": a.digest, "1.1": b.digest}


async def test_excluded_attestation_tag_is_not_synced(
    api: MirrorApi, registry: RegistryProcess, upstream_name: str
) -> None:
    a, b = await push_two(registry.url, upstream_name)
    sig = img.make_cosign_signature(a.digest, "excluded")
    att = make_cosign_attestation(a.digest, "excluded")
    async with img.RegistryClient(registry.url) as client:
        await client.push_image(upstream_name, cosign_tag(a.digest, "sig"), sig)
        await client.push_image(upstream_name, cosign_tag(a.digest, "att"), att)
    await api.setup(
        "excluded", registry.url, upstream_name, include_tags=["1.*"], exclude_tags=["*.att"]
    )

    task = await api.sync("excluded")

    assert task.state == pb.TASK_STATE_COMPLETED, task.error
    # Today the version also holds `sha256-<hex>.att` and the attestation manifest.
    assert await api.tags("excluded") == {
        "1.0": a.digest,
        "1.1": b.digest,
        cosign_tag(a.digest, "sig"): sig.digest,
    }
    assert att.digest not in await api.manifests("excluded")


async def test_metadata_of_a_bzip2_compressed_atomic_signature(
    api: MirrorApi,
    registry: RegistryProcess,
    upstream_name: str,
    gpg_key: GpgKey,
    tmp_path: Path,
) -> None:
    a, _ = await push_two(registry.url, upstream_name)
    signed = gpg_key.sign_atomic(
        "example.invalid/x", a.digest, timestamp=1_700_000_000, compress_algo="bzip2"
    )
    async with LookasideServer(tmp_path / "www") as sigstore:
        sigstore.add(upstream_name, a.digest, signed)
        await api.setup(
            "bzip2", registry.url, upstream_name, include_tags=["1.0"], sigstore=sigstore.sigstore
        )

        task = await api.sync("bzip2")

    assert task.state == pb.TASK_STATE_COMPLETED, task.error
    (signature,) = await api.signatures("bzip2", a.digest)
    assert signature.size == len(signed)  # the bytes are kept all the same
    # Today: key_id "", creator "", no timestamp.
    assert signature.key_id == gpg_key.key_id
    assert signature.creator == "mirror-tests"
    assert signature.timestamp.seconds == 1_700_000_000
