"""Cosign signatures and OCI 1.1 referrers, end to end: a real docker-registry upstream (with,
where needed, an extension server in front of it), the service over gRPC, and its own pull
endpoint serving what was synced."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import pytest

from protos import mirror_pb2 as pb
from tests.support import images as img
from tests.support.faultproxy import FaultProxy
from tests.support.registry import RegistryProcess, registry_available
from tests.support.signatures import (  # noqa: F401
    NOTARY_SIGNATURE,
    ExtensionServer,
    MirrorApi,
    api_fixture,
    cosign_tag,
    fallback_tag,
    make_cosign_attestation,
    make_referrer,
    make_referrers_index,
    present,
    referrer_descriptor,
    registry_fixture,
)

pytestmark = [
    pytest.mark.registry,
    pytest.mark.skipif(not registry_available(), reason="docker-registry is not installed"),
]


SIGNATURE = "container.signature"
OCI_INDEX = img.OCI_INDEX


@pytest.fixture
def upstream_name() -> str:
    return f"s{uuid.uuid4().hex[:10]}/app"


def small_image(seed: str, media: img.Media = "docker") -> img.Image:
    return img.make_image(seed, layers=1, layer_size=512, media=media)


@dataclass
class Signed:
    """Images A (tag 1.0, signed and attested with cosign) and B (tag 1.1, unsigned)."""

    a: img.Image
    b: img.Image
    sig: img.Image
    att: img.Image

    @property
    def sig_tag(self) -> str:
        return cosign_tag(self.a.digest, "sig")

    @property
    def att_tag(self) -> str:
        return cosign_tag(self.a.digest, "att")


async def push_signed(url: str, name: str, seed: str = "") -> Signed:
    seed = seed or name
    a, b = small_image(f"{seed}-a"), small_image(f"{seed}-b", media="oci")
    signed = Signed(
        a=a,
        b=b,
        sig=img.make_cosign_signature(a.digest, seed, reference=f"example.invalid/{name}"),
        att=make_cosign_attestation(a.digest, seed),
    )
    async with img.RegistryClient(url) as client:
        assert await client.push_image(name, "1.0", a) == a.digest
        assert await client.push_image(name, "1.1", b) == b.digest
        assert await client.push_image(name, signed.sig_tag, signed.sig) == signed.sig.digest
        assert await client.push_image(name, signed.att_tag, signed.att) == signed.att.digest
    return signed


async def assert_served_exactly(api: MirrorApi, base: str, ref: str, artifact: img.Image) -> None:
    """The mirror's pull endpoint serves ``artifact`` (manifest by ``ref`` and every blob) with
    the exact bytes that were pushed upstream."""
    accept = {"Accept": ", ".join(img.ALL_MANIFEST_TYPES)}
    status, headers, body = await api.get(f"/v2/{base}/manifests/{ref}", accept)
    assert status == 200, body
    assert body == artifact.manifest
    assert headers["Docker-Content-Digest"] == artifact.digest
    assert headers["Content-Type"] == artifact.media_type
    for digest, data in artifact.blobs.items():
        status, headers, body = await api.get(f"/v2/{base}/blobs/{digest}")
        assert status == 200, (digest, body)
        assert body == data, digest


# ---------------------------------------------------------------------------- cosign tags
async def test_cosign_signature_and_attestation_follow_a_wildcard_include(
    api: MirrorApi, registry: RegistryProcess, upstream_name: str
) -> None:
    up = await push_signed(registry.url, upstream_name)
    await api.setup("cosign", registry.url, upstream_name, include_tags=["1.*"])

    task = await api.sync("cosign")

    assert task.state == pb.TASK_STATE_COMPLETED, task.error
    assert list(task.warnings) == []
    assert await api.tags("cosign") == {
        "1.0": up.a.digest,
        "1.1": up.b.digest,
        up.sig_tag: up.sig.digest,
        up.att_tag: up.att.digest,
    }
    manifests = await api.manifests("cosign")
    assert set(manifests) == {up.a.digest, up.b.digest, up.sig.digest, up.att.digest}
    blobs = await api.blobs("cosign")
    wanted = {**up.a.blobs, **up.b.blobs, **up.sig.blobs, **up.att.blobs}
    assert set(blobs) == set(wanted)
    assert all(blobs[d].stored and blobs[d].size == len(data) for d, data in wanted.items())
    version = await api.version("cosign")
    assert present(version) == {
        "container.blob": len(wanted),
        "container.manifest": 4,
        "container.tag": 4,
        SIGNATURE: 1,  # the attestation is content, not a signature
    }
    assert version.content_summary.added[SIGNATURE] == 1
    (signature,) = await api.signatures("cosign", up.a.digest)
    assert signature.type == "cosign"
    assert signature.manifest_digest == up.a.digest
    assert signature.digest == up.sig.digest
    assert signature.size == len(up.sig.manifest)
    assert signature.name == up.sig_tag
    assert await api.signatures("cosign", up.b.digest) == []
    assert [s.digest for s in await api.signatures("cosign")] == [up.sig.digest]

    base = await api.publish("cosign")
    await assert_served_exactly(api, base, up.sig_tag, up.sig)
    await assert_served_exactly(api, base, up.att_tag, up.att)
    await assert_served_exactly(api, base, up.sig.digest, up.sig)
    # The signature extension serves atomic signatures only: none here.
    status, _, body = await api.get(f"/extensions/v2/{base}/signatures/{up.a.digest}")
    assert status == 200, body
    assert json.loads(body)["signatures"] == []


async def test_cosign_signature_is_probed_for_a_literal_include(
    api: MirrorApi, registry: RegistryProcess, upstream_name: str
) -> None:
    """No tag listing: the signature tags are HEAD probes. ON_DEMAND still stores every blob
    of a signature or attestation (a verifier needs them even when the upstream is gone)."""
    up = await push_signed(registry.url, upstream_name)
    async with FaultProxy(registry.url) as proxy:
        await api.setup(
            "literal", proxy.url, upstream_name, include_tags=["1.0"], policy=pb.POLICY_ON_DEMAND
        )

        task = await api.sync("literal")

        assert task.state == pb.TASK_STATE_COMPLETED, task.error
        assert proxy.hits("GET", "/tags/list") == 0
        assert proxy.hits("HEAD", f"/manifests/{up.sig_tag}") == 1
        assert proxy.hits("HEAD", f"/manifests/{up.att_tag}") == 1
    assert await api.tags("literal") == {
        "1.0": up.a.digest,
        up.sig_tag: up.sig.digest,
        up.att_tag: up.att.digest,
    }
    assert set(await api.manifests("literal")) == {up.a.digest, up.sig.digest, up.att.digest}
    blobs = await api.blobs("literal")
    assert set(blobs) == {*up.a.blobs, *up.sig.blobs, *up.att.blobs}
    for artifact in (up.sig, up.att):
        assert all(blobs[d].stored for d in artifact.blobs), artifact.digest
    assert not blobs[up.a.layers[0].digest].stored  # image layers wait for their first pull
    (signature,) = await api.signatures("literal", up.a.digest)
    assert (signature.type, signature.digest) == ("cosign", up.sig.digest)
    assert present(await api.version("literal"))[SIGNATURE] == 1
    base = await api.publish("literal")
    await assert_served_exactly(api, base, up.sig_tag, up.sig)
    await assert_served_exactly(api, base, up.att_tag, up.att)


async def test_cosign_signature_of_an_index_child_is_found_through_the_listing(
    api: MirrorApi, registry: RegistryProcess, upstream_name: str
) -> None:
    index = img.make_index(upstream_name, img.PLATFORMS[:2], layer_size=256)
    child = index.children[1]
    sig = img.make_cosign_signature(child.digest, "child")
    async with img.RegistryClient(registry.url) as client:
        await client.push_index(upstream_name, "1.0", index)
        await client.push_image(upstream_name, cosign_tag(child.digest, "sig"), sig)
    await api.setup("child", registry.url, upstream_name, include_tags=["1.*"])

    task = await api.sync("child")

    assert task.state == pb.TASK_STATE_COMPLETED, task.error
    assert (await api.tags("child"))[cosign_tag(child.digest, "sig")] == sig.digest
    (signature,) = await api.signatures("child", child.digest)
    assert signature.digest == sig.digest
    assert await api.signatures("child", index.digest) == []


# ---------------------------------------------------------------------------- mirror mode
async def test_mirror_sync_drops_the_signatures_of_deleted_images(
    api: MirrorApi, registry: RegistryProcess, upstream_name: str
) -> None:
    """A is deleted with its signature and attestation (as `cosign clean` would); C is
    deleted alone, its signature tags left orphaned upstream. Neither the include filter
    (1.*) nor a subject reaches them any more: a mirror sync removes both sets."""
    up = await push_signed(registry.url, upstream_name)
    c = small_image(f"{upstream_name}-c")
    c_sig, c_att = img.make_cosign_signature(c.digest, "c"), make_cosign_attestation(c.digest)
    async with img.RegistryClient(registry.url) as client:
        await client.push_image(upstream_name, "1.2", c)
        await client.push_image(upstream_name, cosign_tag(c.digest, "sig"), c_sig)
        await client.push_image(upstream_name, cosign_tag(c.digest, "att"), c_att)
    await api.setup("gone", registry.url, upstream_name, include_tags=["1.*"])
    first = await api.sync("gone", mirror=True)
    assert first.state == pb.TASK_STATE_COMPLETED, first.error
    assert present(await api.version("gone", 1))[SIGNATURE] == 2
    base = await api.publish("gone")
    async with img.RegistryClient(registry.url) as client:
        for digest in (up.a.digest, up.sig.digest, up.att.digest, c.digest):
            await client.delete_manifest(upstream_name, digest)
        listed = set(await client.list_tags(upstream_name))
    assert listed == {"1.1", cosign_tag(c.digest, "sig"), cosign_tag(c.digest, "att")}

    second = await api.sync("gone", mirror=True)

    assert second.state == pb.TASK_STATE_COMPLETED, second.error
    assert list(second.created_resources) == ["repositories/gone/versions/2"]
    assert await api.tags("gone") == {"1.1": up.b.digest}
    assert set(await api.manifests("gone")) == {up.b.digest}
    assert set(await api.blobs("gone")) == set(up.b.blobs)
    assert await api.signatures("gone") == []
    assert await api.signatures("gone", up.a.digest) == []
    assert await api.signatures("gone", c.digest) == []
    version = await api.version("gone")
    assert SIGNATURE not in present(version)
    removed = {k: v for k, v in version.content_summary.removed.items() if v}
    assert removed[SIGNATURE] == 2
    assert removed["container.tag"] == 6
    assert removed["container.manifest"] == 6
    diff = await api.content.DiffVersions(
        pb.DiffVersionsRequest(
            base_version="repositories/gone/versions/1",
            target_version="repositories/gone/versions/2",
            content_type=SIGNATURE,
        )
    )
    assert sorted((ch.kind, ch.content.signature.digest) for ch in diff.changes) == sorted(
        [(pb.CHANGE_KIND_REMOVED, up.sig.digest), (pb.CHANGE_KIND_REMOVED, c_sig.digest)]
    )
    for tag in (up.sig_tag, cosign_tag(c.digest, "sig")):
        status, _, _ = await api.get(f"/v2/{base}/manifests/{tag}")
        assert status == 404, tag
    # The previous version still holds them.
    assert [s.digest for s in await api.signatures("gone", up.a.digest, version=1)] == [
        up.sig.digest
    ]


# ---------------------------------------------------------------------------- referrers
async def push_referrers_fallback(
    url: str, name: str, subject: img.Image
) -> tuple[img.Image, img.Index]:
    """A notary signature of ``subject`` by digest and the fallback index tagged
    ``sha256-<hex>`` that lists it, as an OCI 1.1 client does on a 1.0 registry."""
    notary = make_referrer(subject, NOTARY_SIGNATURE, f"jws:{name}".encode())
    index = make_referrers_index(notary)
    async with img.RegistryClient(url) as client:
        assert await client.push_index(name, fallback_tag(subject.digest), index) == index.digest
    return notary, index


async def test_referrers_fallback_tag_is_synced_and_served_by_the_referrers_api(
    api: MirrorApi, registry: RegistryProcess, upstream_name: str
) -> None:
    a, b = small_image(f"{upstream_name}-a"), small_image(f"{upstream_name}-b")
    async with img.RegistryClient(registry.url) as client:
        await client.push_image(upstream_name, "1.0", a)
        await client.push_image(upstream_name, "1.1", b)
    notary, index = await push_referrers_fallback(registry.url, upstream_name, a)
    await api.setup("fallback", registry.url, upstream_name, include_tags=["1.*"])

    task = await api.sync("fallback")

    assert task.state == pb.TASK_STATE_COMPLETED, task.error
    assert await api.tags("fallback") == {
        "1.0": a.digest,
        "1.1": b.digest,
        fallback_tag(a.digest): index.digest,
    }
    manifests = await api.manifests("fallback")
    assert set(manifests) == {a.digest, b.digest, notary.digest, index.digest}
    assert manifests[notary.digest].subject == a.digest
    assert manifests[notary.digest].artifact_type == NOTARY_SIGNATURE
    assert set(notary.blobs) <= set(await api.blobs("fallback"))
    (signature,) = await api.signatures("fallback", a.digest)
    assert signature.digest == notary.digest
    assert signature.manifest_digest == a.digest
    assert signature.type == "notation"
    assert present(await api.version("fallback"))[SIGNATURE] == 1

    base = await api.publish("fallback")
    status, headers, body = await api.get(f"/v2/{base}/referrers/{a.digest}")
    assert status == 200, body
    assert headers["Content-Type"] == OCI_INDEX
    doc = json.loads(body)
    assert doc["mediaType"] == OCI_INDEX
    assert doc["manifests"] == [referrer_descriptor(notary)]
    assert doc["manifests"][0]["artifactType"] == NOTARY_SIGNATURE
    status, headers, body = await api.get(f"/v2/{base}/referrers/{a.digest}?artifactType=other")
    assert status == 200, body
    assert json.loads(body)["manifests"] == []
    assert headers["OCI-Filters-Applied"] == "artifactType"
    status, headers, body = await api.get(
        f"/v2/{base}/referrers/{a.digest}?artifactType={NOTARY_SIGNATURE}"
    )
    assert [d["digest"] for d in json.loads(body)["manifests"]] == [notary.digest]
    assert headers["OCI-Filters-Applied"] == "artifactType"
    status, _, body = await api.get(f"/v2/{base}/referrers/{b.digest}")
    assert status == 200
    assert json.loads(body)["manifests"] == []
    await assert_served_exactly(api, base, notary.digest, notary)


async def test_referrers_api_upstream_is_followed(
    api: MirrorApi, registry: RegistryProcess, upstream_name: str
) -> None:
    a, b = small_image(f"{upstream_name}-a"), small_image(f"{upstream_name}-b")
    notary = make_referrer(
        a,
        NOTARY_SIGNATURE,
        b"notary-jws",
        annotations={"io.cncf.notary.x509chain.thumbprint#S256": '["abc"]'},
    )
    cosign = make_referrer(
        a,
        None,
        b'{"critical":{}}',
        config_media_type=img.COSIGN_SIMPLESIGNING,
        layer_media_type=img.COSIGN_SIMPLESIGNING,
    )
    sbom = make_referrer(
        a, "application/spdx+json", b'{"spdxVersion":"SPDX-2.3"}', layer_media_type="text/spdx"
    )
    async with img.RegistryClient(registry.url) as client:
        await client.push_image(upstream_name, "1.0", a)
        await client.push_image(upstream_name, "1.1", b)
        for artifact in (notary, cosign, sbom):
            await client.push_image(upstream_name, None, artifact)
    async with ExtensionServer(registry.url) as ext:
        for artifact in (notary, cosign, sbom):
            ext.add_referrer(upstream_name, a.digest, referrer_descriptor(artifact))
        ext.referrers_page_size = 2  # two pages, linked by `Link: rel="next"`
        await api.setup(
            "api", ext.url, upstream_name, include_tags=["1.*"], policy=pb.POLICY_ON_DEMAND
        )

        task = await api.sync("api")

        assert task.state == pb.TASK_STATE_COMPLETED, task.error
        assert ext.hits("GET", f"/referrers/{a.digest}") == 2
        assert ext.hits("GET", f"/referrers/{a.digest}?page=2") == 1
        assert ext.hits("GET", f"/referrers/{b.digest}") == 1
    assert await api.tags("api") == {"1.0": a.digest, "1.1": b.digest}
    manifests = await api.manifests("api")
    assert set(manifests) == {a.digest, b.digest, notary.digest, cosign.digest, sbom.digest}
    blobs = await api.blobs("api")
    for artifact in (notary, cosign, sbom):
        assert manifests[artifact.digest].subject == a.digest
        assert all(blobs[d].stored for d in artifact.blobs), artifact.digest
    signatures = {s.digest: s for s in await api.signatures("api", a.digest)}
    assert set(signatures) == {notary.digest, cosign.digest}  # the SBOM is no signature
    assert signatures[notary.digest].type == "notation"
    assert signatures[cosign.digest].type == "cosign"
    assert present(await api.version("api"))[SIGNATURE] == 2

    base = await api.publish("api")
    status, _, body = await api.get(f"/v2/{base}/referrers/{a.digest}")
    assert status == 200, body
    listed = {d["digest"]: d for d in json.loads(body)["manifests"]}
    assert listed == {x.digest: referrer_descriptor(x) for x in (notary, cosign, sbom)}
    assert "annotations" in listed[notary.digest]
    status, _, body = await api.get(
        f"/v2/{base}/referrers/{a.digest}?artifactType=application/spdx%2Bjson"
    )
    assert [d["digest"] for d in json.loads(body)["manifests"]] == [sbom.digest]
    for artifact in (notary, cosign, sbom):
        await assert_served_exactly(api, base, artifact.digest, artifact)


# ---------------------------------------------------------------------------- signed_only
async def test_signed_only_keeps_signed_images_and_their_signatures(
    api: MirrorApi, registry: RegistryProcess, upstream_name: str
) -> None:
    """(test_signatures_atomic.py covers signed_only with a literal include.)"""
    up = await push_signed(registry.url, upstream_name)
    await api.setup("signed", registry.url, upstream_name, include_tags=["1.*"], signed_only=True)

    task = await api.sync("signed")

    assert task.state == pb.TASK_STATE_COMPLETED, task.error
    assert await api.tags("signed") == {
        "1.0": up.a.digest,
        up.sig_tag: up.sig.digest,
        up.att_tag: up.att.digest,
    }
    assert set(await api.manifests("signed")) == {up.a.digest, up.sig.digest, up.att.digest}
    assert set(await api.blobs("signed")) == {*up.a.blobs, *up.sig.blobs, *up.att.blobs}
    assert [s.digest for s in await api.signatures("signed", up.a.digest)] == [up.sig.digest]
    skipped = [w for w in task.warnings if "'1.1'" in w]
    assert len(skipped) == 1, list(task.warnings)
    assert "signed_only" in skipped[0]
    assert not any("'1.0'" in w for w in task.warnings), list(task.warnings)
