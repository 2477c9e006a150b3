"""Atomic container signatures (real GnuPG signatures), end to end: from the docker signature
extension (an extension server in front of a real docker-registry) and from a lookaside
sigstore, to ListContent and the service's own `/extensions/v2/.../signatures/...` route."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from pathlib import Path

import pytest

from protos import mirror_pb2 as pb
from tests.support.registry import RegistryProcess, registry_available
from tests.support.signatures import (  # noqa: F401
    ATOMIC_TYPE,
    ExtensionServer,
    GpgKey,
    LookasideServer,
    MirrorApi,
    api_fixture,
    gpg_key_fixture,
    present,
    push_two,
    registry_fixture,
)

pytestmark = [
    pytest.mark.registry,
    pytest.mark.skipif(not registry_available(), reason="docker-registry is not installed"),
]


SIGNATURE = "container.signature"
CREATED = 1_700_000_000


@pytest.fixture
def upstream_name() -> str:
    return f"a{uuid.uuid4().hex[:10]}/app"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


async def served_signatures(api: MirrorApi, base: str, digest: str) -> list[dict[str, object]]:
    status, _, body = await api.get(f"/extensions/v2/{base}/signatures/{digest}")
    assert status == 200, body
    entries = json.loads(body)["signatures"]
    assert isinstance(entries, list)
    return entries


def check_claims(payload: bytes, reference: str, digest: str) -> None:
    claims = json.loads(payload)
    assert claims["critical"]["type"] == ATOMIC_TYPE
    assert claims["critical"]["identity"]["docker-reference"] == reference
    assert claims["critical"]["image"]["docker-manifest-digest"] == digest


# ---------------------------------------------------------------------------- extension API
async def test_atomic_signature_from_the_extension_api(
    api: MirrorApi,
    registry: RegistryProcess,
    upstream_name: str,
    gpg_key: GpgKey,
    tmp_path: Path,
) -> None:
    a, b = await push_two(registry.url, upstream_name)
    reference = f"example.invalid/{upstream_name}:1.0"
    signed = gpg_key.sign_atomic(reference, a.digest, creator="mirror-tests", timestamp=CREATED)
    name = f"{a.digest}@{uuid.uuid4().hex}"
    garbage = b"not an OpenPGP message"
    async with ExtensionServer(registry.url) as ext:
        ext.add_signature(upstream_name, a.digest, signed, name)
        ext.add_signature(upstream_name, b.digest, garbage, f"{b.digest}@{'0' * 32}")
        await api.setup("ext", ext.url, upstream_name, include_tags=["1.*"])

        task = await api.sync("ext")

        assert task.state == pb.TASK_STATE_COMPLETED, task.error
        assert ext.hits("GET", f"/extensions/v2/{upstream_name}/signatures/{a.digest}") == 1
    assert list(task.warnings) == []
    (signature,) = await api.signatures("ext", a.digest)
    assert signature.type == "atomic"
    assert signature.name == name
    assert signature.manifest_digest == a.digest
    assert signature.digest == sha256(signed)
    assert signature.size == len(signed)
    assert signature.key_id == gpg_key.key_id  # long key id, 16 upper-case hex digits
    assert len(signature.key_id) == 16
    assert signature.creator == "mirror-tests"
    assert signature.HasField("timestamp")
    assert signature.timestamp.seconds == CREATED
    # Unreadable bytes are kept as they came, without metadata.
    (unreadable,) = await api.signatures("ext", b.digest)
    assert (unreadable.type, unreadable.digest) == ("atomic", sha256(garbage))
    assert (unreadable.key_id, unreadable.creator) == ("", "")
    assert not unreadable.HasField("timestamp")
    assert present(await api.version("ext"))[SIGNATURE] == 2

    base = await api.publish("ext")
    (entry,) = await served_signatures(api, base, a.digest)
    assert entry["type"] == "atomic"
    assert entry["version"] == 2
    assert entry["name"] == name
    content = base64.b64decode(str(entry["content"]), validate=True)
    assert content == signed
    check_claims(gpg_key.verify(content, tmp_path / "verify"), reference, a.digest)
    (entry,) = await served_signatures(api, base, b.digest)
    assert base64.b64decode(str(entry["content"])) == garbage
    assert await served_signatures(api, base, "sha256:" + "0" * 64) == []


# ---------------------------------------------------------------------------- lookaside
async def test_lookaside_sigstore_signatures_are_stored(
    api: MirrorApi,
    registry: RegistryProcess,
    upstream_name: str,
    gpg_key: GpgKey,
    tmp_path: Path,
) -> None:
    """Two signatures in the sigstore, the first of them also from the extension API: two
    signatures stored, each once. Then signature-2 leaves the sigstore: a mirror sync drops
    it."""
    a, b = await push_two(registry.url, upstream_name)
    reference = f"example.invalid/{upstream_name}:1.0"
    first = gpg_key.sign_atomic(reference, a.digest, timestamp=CREATED)
    second = gpg_key.sign_atomic(reference, a.digest, timestamp=CREATED + 60)
    where = f"/sigstore/{upstream_name}@sha256={a.digest.partition(':')[2]}"
    ext = ExtensionServer(registry.url)
    sigstore = LookasideServer(tmp_path / "www")
    async with ext, sigstore:
        ext.add_signature(upstream_name, a.digest, first, f"{a.digest}@{'1' * 32}")
        _, second_path = sigstore.add(upstream_name, a.digest, first, second)
        await api.setup(
            "look", ext.url, upstream_name, include_tags=["1.*"], sigstore=sigstore.sigstore
        )

        task = await api.sync("look", mirror=True)

        assert task.state == pb.TASK_STATE_COMPLETED, task.error
        assert sigstore.hits("GET", f"{where}/signature-1") == 1
        assert sigstore.hits("GET", f"{where}/signature-3") == 1  # the first 404 ends the list
        assert list(task.warnings) == []
        signatures = {s.digest: s for s in await api.signatures("look", a.digest)}
        assert set(signatures) == {sha256(first), sha256(second)}
        for data, stamp in ((first, CREATED), (second, CREATED + 60)):
            signature = signatures[sha256(data)]
            assert signature.type == "atomic"
            assert signature.key_id == gpg_key.key_id
            assert signature.creator == "mirror-tests"
            assert signature.timestamp.seconds == stamp
            assert signature.size == len(data)
            assert signature.name.startswith(f"{a.digest}@")
        assert len({s.name for s in signatures.values()}) == 2
        assert await api.signatures("look", b.digest) == []
        assert present(await api.version("look"))[SIGNATURE] == 2

        base = await api.publish("look")
        entries = await served_signatures(api, base, a.digest)
        contents = {base64.b64decode(str(e["content"])): e["name"] for e in entries}
        assert len(entries) == 2
        assert set(contents) == {first, second}
        assert {contents[first], contents[second]} == {s.name for s in signatures.values()}
        for n, content in enumerate(contents):
            check_claims(gpg_key.verify(content, tmp_path / f"verify{n}"), reference, a.digest)

        second_path.unlink()
        again = await api.sync("look", mirror=True)

    assert again.state == pb.TASK_STATE_COMPLETED, again.error
    assert list(again.created_resources) == ["repositories/look/versions/2"]
    assert [s.digest for s in await api.signatures("look", a.digest)] == [sha256(first)]
    version = await api.version("look")
    assert present(version)[SIGNATURE] == 1
    assert version.content_summary.removed[SIGNATURE] == 1
    (entry,) = await served_signatures(api, base, a.digest)
    assert base64.b64decode(str(entry["content"])) == first


async def test_signature_source_failures_complete_with_warnings(
    api: MirrorApi,
    registry: RegistryProcess,
    upstream_name: str,
    gpg_key: GpgKey,
    tmp_path: Path,
) -> None:
    """The extension API and the sigstore both answer 500 (after retries): the images are
    synced, the task completes, and its warnings say which signatures are missing."""
    a, b = await push_two(registry.url, upstream_name)
    async with (
        ExtensionServer(registry.url) as ext,
        LookasideServer(tmp_path / "www") as sigstore,
    ):
        ext.add_signature(
            upstream_name, a.digest, gpg_key.sign_atomic("example.invalid/x", a.digest)
        )
        ext.signature_status = 500
        sigstore.add(upstream_name, a.digest, gpg_key.sign_atomic("example.invalid/y", a.digest))
        sigstore.status = 500
        await api.setup(
            "flaky",
            ext.url,
            upstream_name,
            include_tags=["1.*"],
            sigstore=sigstore.sigstore,
            max_retries=1,
        )

        task = await api.sync("flaky")

        assert sigstore.hits("GET", "/signature-1") >= 2  # A and B
    assert task.state == pb.TASK_STATE_COMPLETED, task.error
    warnings = list(task.warnings)
    about_a = [w for w in warnings if a.digest in w and "signature" in w]
    assert len(about_a) == 2, warnings  # one per failed source
    assert all("signature" in w for w in warnings), warnings
    assert await api.tags("flaky") == {"1.0": a.digest, "1.1": b.digest}
    assert len(await api.manifests("flaky")) == 2
    assert await api.signatures("flaky") == []
    assert SIGNATURE not in present(await api.version("flaky"))


# ---------------------------------------------------------------------------- signed_only
async def test_signed_only_accepts_atomic_signatures(
    api: MirrorApi,
    registry: RegistryProcess,
    upstream_name: str,
    gpg_key: GpgKey,
    tmp_path: Path,
) -> None:
    """A literal include (no tag listing): 1.0 is signed in the sigstore only, 1.1 not."""
    a, _ = await push_two(registry.url, upstream_name)
    signed = gpg_key.sign_atomic("example.invalid/x", a.digest)
    async with LookasideServer(tmp_path / "www") as sigstore:
        sigstore.add(upstream_name, a.digest, signed)
        await api.setup(
            "only",
            registry.url,
            upstream_name,
            include_tags=["1.0", "1.1"],
            sigstore=sigstore.sigstore,
            signed_only=True,
        )

        task = await api.sync("only")

    assert task.state == pb.TASK_STATE_COMPLETED, task.error
    assert await api.tags("only") == {"1.0": a.digest}
    assert set(await api.manifests("only")) == {a.digest}
    assert set(await api.blobs("only")) == set(a.blobs)
    assert [s.digest for s in await api.signatures("only", a.digest)] == [sha256(signed)]
    skipped = [w for w in task.warnings if "'1.1'" in w]
    assert len(skipped) == 1, list(task.warnings)
    assert "signed_only" in skipped[0]
    assert not any("'1.0'" in w for w in task.warnings), list(task.warnings)
