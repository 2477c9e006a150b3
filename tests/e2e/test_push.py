"""Pushing into the registry endpoint: real skopeo from OCI layouts the test writes, pulled
back byte-identical; raw HTTP for what skopeo cannot be made to do (interrupted chunks, wrong
digests, missing blobs, mounts, 20 concurrent tag pushes). Versions through gRPC."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import io
import json
from pathlib import Path

import aiohttp
import jwt
import pytest

from client import AsyncMirrorClient
from protos import mirror_pb2 as pb
from server.app import Services, start_registry
from tests.e2e.conftest import E2E, Artifact, check_oci_layout, stored_digests
from tests.support import images as img
from tests.support.access import principal_with_token
from tests.support.registry import RegistryProcess
from tests.support.registry_auth import DockerTokenAuth, parse_challenge

BASE = "team/app"


def write_oci_layout(root: Path, artifact: Artifact, tag: str) -> Path:
    """An OCI image layout holding `artifact` under `tag` (what `skopeo copy oci:` reads)."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    for digest, data in artifact.blobs.items():
        (blobs / digest.split(":")[1]).write_bytes(data)
    for digest, (_, data) in artifact.manifests.items():
        (blobs / digest.split(":")[1]).write_bytes(data)
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    descriptor = {
        "mediaType": artifact.media_type,
        "digest": artifact.digest,
        "size": artifact.size,
        "annotations": {"org.opencontainers.image.ref.name": tag},
    }
    index = {"schemaVersion": 2, "manifests": [descriptor]}
    (root / "index.json").write_text(json.dumps(index))
    return root


async def push_repository(e2e: E2E, name: str = "own", base: str = BASE) -> None:
    await e2e.repositories.CreateRepository(pb.CreateRepositoryRequest(repository_id=name))
    await e2e.distribute(name, base, repository=f"repositories/{name}")


async def skopeo_push(
    e2e: E2E, artifact: Artifact, tag: str, *extra: str, base: str = BASE, creds: str = ""
):
    """`skopeo copy oci:... docker://...`: as admin (the e2e auth file), or as `creds`
    (`principal:token`, skopeo's `--dest-creds`)."""
    layout = write_oci_layout(e2e.new_dir("layout"), artifact, tag)
    return await e2e.skopeo(
        "copy",
        *extra,
        *((f"--dest-creds={creds}",) if creds else ()),
        "--dest-tls-verify=false",
        f"oci:{layout}:{tag}",
        f"docker://{e2e.endpoint}/{base}:{tag}",
    )


async def versions(e2e: E2E, name: str = "own") -> list[pb.Version]:
    resp = await e2e.versions.ListVersions(pb.ListVersionsRequest(parent=f"repositories/{name}"))
    return list(resp.versions)


async def tags(e2e: E2E, name: str = "own") -> dict[str, str]:
    resp = await e2e.content.ListContent(
        pb.ListContentRequest(
            parent=f"repositories/{name}/versions/latest",
            content_type="container.tag",
            page_size=1000,
        )
    )
    return {c.tag.name: c.tag.manifest_digest for c in resp.content}


def uploads_left(e2e: E2E) -> list[Path]:
    return list((e2e.data_dir / "uploads").iterdir())


BOTH_BACKENDS = pytest.mark.parametrize("storage_backend", ["fs", "s3"], indirect=True)


@BOTH_BACKENDS
async def test_skopeo_pushes_image_index_and_signature_and_pulls_them_back(e2e: E2E) -> None:
    await push_repository(e2e)
    image = img.make_image("push-a", layers=2, media="oci")
    index = img.make_index("push-index", platforms=img.PLATFORMS[:2])
    signature = img.make_cosign_signature(image.digest, "push")
    sig_tag = img.cosign_signature_tag(image.digest)

    (await skopeo_push(e2e, image, "1.0", "--preserve-digests")).check()
    (await skopeo_push(e2e, index, "multi", "--all", "--preserve-digests")).check()
    (await skopeo_push(e2e, signature, sig_tag, "--preserve-digests")).check()

    assert await tags(e2e) == {
        "1.0": image.digest,
        "multi": index.digest,
        sig_tag: signature.digest,
    }
    history = await versions(e2e)
    # One version per manifest PUT: the image; two children then the index; the signature.
    assert [v.number for v in history] == [5, 4, 3, 2, 1, 0]
    assert all(v.source == pb.VERSION_SOURCE_PUSH for v in history[:-1])
    assert history[-2].source_detail == "push: PUT manifests/1.0"
    assert dict(history[-2].content_summary.added) == {
        "container.manifest": 1,
        "container.tag": 1,
        "container.blob": 3,
    }
    index_version = history[1]
    assert dict(index_version.content_summary.added) == {
        "container.manifest": 1,
        "container.tag": 1,
    }
    check_oci_layout(await e2e.copy_oci(BASE, "1.0"), image)
    check_oci_layout(await e2e.copy_oci(BASE, "multi"), index)
    check_oci_layout(await e2e.copy_oci(BASE, sig_tag), signature)
    assert uploads_left(e2e) == []


async def test_push_into_a_mirror_is_denied_and_stores_nothing(
    e2e: E2E, upstream_registry: RegistryProcess, upstream_name: str
) -> None:
    upstream_image = img.make_image("mirror-up", layers=1)
    await img.push_image(upstream_registry.url, upstream_name, "latest", upstream_image)
    await e2e.setup("mirrored", upstream_registry.url, upstream_name)
    events = [
        e
        async for e in e2e.syncs.Sync(
            pb.SyncRequest(
                repository="repositories/mirrored", remote="remotes/mirrored", mirror=True
            )
        )
    ]
    assert events[-1].task.state == pb.TASK_STATE_COMPLETED
    await e2e.distribute("mirrored", "mirrored/app", repository="repositories/mirrored")
    before = stored_digests(e2e.data_dir)
    pushed = img.make_image("into-mirror", layers=1, media="oci")

    result = await skopeo_push(e2e, pushed, "evil", base="mirrored/app")

    assert result.returncode != 0
    assert "denied" in result.stderr.decode().lower()
    assert stored_digests(e2e.data_dir) == before
    assert uploads_left(e2e) == []
    assert [v.number for v in await versions(e2e, "mirrored")] == [1, 0]
    async with e2e.http.post(e2e.url("/v2/mirrored/app/blobs/uploads/")) as resp:
        body = await resp.json()
        assert resp.status == 403
        assert body["errors"][0]["code"] == "DENIED"
        assert "mirror" in body["errors"][0]["message"]
    assert uploads_left(e2e) == []


async def _raw_patch_cut(endpoint: str, path: str, data: bytes, declared: int) -> None:
    """A PATCH that announces `declared` bytes, sends `data` and drops the connection."""
    host, port = endpoint.split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        f"PATCH {path} HTTP/1.1\r\nHost: {endpoint}\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Length: {declared}\r\n\r\n".encode()
        + data
    )
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    del reader


@BOTH_BACKENDS
async def test_chunked_upload_interrupted_resumes_on_another_endpoint(
    e2e: E2E, services: Services
) -> None:
    await push_repository(e2e)
    blob = hashlib.sha256(b"seed").digest() * 40_000  # 1.28 MB
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    async with e2e.http.post(e2e.url(f"/v2/{BASE}/blobs/uploads/")) as resp:
        assert resp.status == 202
        location = resp.headers["Location"]
    first = 300_000
    async with e2e.http.patch(
        e2e.url(location), data=blob[:first], headers={"Content-Range": f"0-{first - 1}"}
    ) as resp:
        assert resp.status == 202
        assert resp.headers["Range"] == f"0-{first - 1}"
    # The next chunk is cut after 200 kB of an announced 500 kB.
    await _raw_patch_cut(e2e.endpoint, location, blob[first : first + 200_000], 500_000)
    # The status waits for the cut request to end; what it had consumed is kept.
    async with e2e.http.get(e2e.url(location)) as resp:
        assert resp.status == 204
        received = int(resp.headers["Range"].split("-")[1]) + 1
    assert first <= received <= first + 200_000
    # The blob is not visible while it uploads.
    async with e2e.http.head(e2e.url(f"/v2/{BASE}/blobs/{digest}")) as resp:
        assert resp.status == 404
    # A chunk that does not continue where the upload stands is refused.
    async with e2e.http.patch(
        e2e.url(location), data=b"x", headers={"Content-Range": "0-0"}
    ) as resp:
        assert resp.status == 416
    # Resume through a second endpoint of the same service (a fresh process's view: no open
    # writer, the bytes re-hashed from the upload file).
    runner, port = await start_registry(services, "127.0.0.1:0")
    try:
        other = f"http://127.0.0.1:{port}"
        async with e2e.http.put(
            other + location,
            params={"digest": digest},
            data=blob[received:],
            headers={"Content-Range": f"{received}-{len(blob) - 1}"},
        ) as resp:
            assert resp.status == 201, await resp.text()
            assert resp.headers["Docker-Content-Digest"] == digest
    finally:
        await runner.cleanup()
    async with e2e.http.get(e2e.url(f"/v2/{BASE}/blobs/{digest}")) as resp:
        assert resp.status == 200
        assert await resp.read() == blob
    assert uploads_left(e2e) == []


async def test_wrong_digest_missing_blob_and_cancel_leave_nothing(e2e: E2E) -> None:
    await push_repository(e2e)
    before = stored_digests(e2e.data_dir)
    claimed = "sha256:" + hashlib.sha256(b"other").hexdigest()
    async with e2e.http.post(
        e2e.url(f"/v2/{BASE}/blobs/uploads/"), params={"digest": claimed}, data=b"payload"
    ) as resp:
        assert resp.status == 400
        assert (await resp.json())["errors"][0]["code"] == "DIGEST_INVALID"
    assert stored_digests(e2e.data_dir) == before
    assert uploads_left(e2e) == []

    async with e2e.http.post(e2e.url(f"/v2/{BASE}/blobs/uploads/")) as resp:
        location = resp.headers["Location"]
    async with e2e.http.patch(e2e.url(location), data=b"abc") as resp:
        assert resp.status == 202
    async with e2e.http.delete(e2e.url(location)) as resp:
        assert resp.status == 204
    async with e2e.http.get(e2e.url(location)) as resp:
        assert resp.status == 404
        assert (await resp.json())["errors"][0]["code"] == "BLOB_UPLOAD_UNKNOWN"
    assert uploads_left(e2e) == []

    image = img.make_image("missing-blob", layers=1, media="oci")
    async with e2e.http.put(
        e2e.url(f"/v2/{BASE}/manifests/latest"),
        data=image.manifest,
        headers={"Content-Type": image.media_type},
    ) as resp:
        assert resp.status == 400
        assert (await resp.json())["errors"][0]["code"] == "MANIFEST_BLOB_UNKNOWN"
    async with e2e.http.put(
        e2e.url(f"/v2/{BASE}/manifests/{claimed}"),
        data=image.manifest,
        headers={"Content-Type": image.media_type},
    ) as resp:
        assert resp.status == 400
        assert (await resp.json())["errors"][0]["code"] == "DIGEST_INVALID"
    huge = b'{"schemaVersion": 2, "layers": [], "pad": "' + b"x" * (4 * 1024 * 1024) + b'"}'
    async with e2e.http.put(
        e2e.url(f"/v2/{BASE}/manifests/huge"),
        data=io.BytesIO(huge),
        headers={"Content-Type": img.OCI_MANIFEST},
    ) as resp:
        assert resp.status == 413
        assert (await resp.json())["errors"][0]["code"] == "MANIFEST_INVALID"
    assert [v.number for v in await versions(e2e)] == [0]


async def test_an_idle_upload_expires_with_its_bytes(e2e: E2E, services: Services) -> None:
    services.settings = dataclasses.replace(services.settings, upload_lifetime=1.0)
    runner, port = await start_registry(services, "127.0.0.1:0")
    e2e.base_url = f"http://127.0.0.1:{port}"
    try:
        await push_repository(e2e)
        async with e2e.http.post(e2e.url(f"/v2/{BASE}/blobs/uploads/")) as resp:
            location = resp.headers["Location"]
        async with e2e.http.patch(e2e.url(location), data=b"partial") as resp:
            assert resp.status == 202
        assert len(uploads_left(e2e)) == 1
        status = 0
        async with asyncio.timeout(20):
            while status != 404 or uploads_left(e2e):
                await asyncio.sleep(0.2)
                async with e2e.http.get(e2e.url(location)) as resp:
                    status = resp.status
        async with e2e.http.patch(e2e.url(location), data=b"more") as resp:
            assert resp.status == 404
            assert (await resp.json())["errors"][0]["code"] == "BLOB_UPLOAD_UNKNOWN"
    finally:
        await runner.cleanup()


async def upload(e2e: E2E, base: str, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    async with e2e.http.post(
        e2e.url(f"/v2/{base}/blobs/uploads/"), params={"digest": digest}, data=data
    ) as resp:
        assert resp.status == 201, await resp.text()
    return digest


async def put_manifest(e2e: E2E, base: str, ref: str, image: img.Image) -> aiohttp.ClientResponse:
    async with e2e.http.put(
        e2e.url(f"/v2/{base}/manifests/{ref}"),
        data=image.manifest,
        headers={"Content-Type": image.media_type},
    ) as resp:
        await resp.read()
        return resp


async def test_mount_from_a_pullable_repository_only(
    e2e: E2E, services: Services, grpc_target: str, admin_token: str
) -> None:
    for name, base in (("own", BASE), ("other", "team/other"), ("secret", "team/secret")):
        await push_repository(e2e, name, base)
    image = img.make_image("mount", layers=1, media="oci")
    for data in image.blobs.values():
        await upload(e2e, "team/other", data)
        await upload(e2e, "team/secret", data)
    assert (await put_manifest(e2e, "team/other", "1", image)).status == 201
    # `mounter` may push into `own` and pull `other`, and has nothing on `secret`.
    async with AsyncMirrorClient(grpc_target, timeout=10, token=admin_token) as admin:
        secret = await principal_with_token(
            admin, "mounter", grants={"own": "editor", "other": "viewer"}
        )
    async with aiohttp.ClientSession(middlewares=(DockerTokenAuth("mounter", secret),)) as http:
        layer = image.layers[0].digest
        async with http.post(
            e2e.url(f"/v2/{BASE}/blobs/uploads/"), params={"mount": layer, "from": "team/secret"}
        ) as resp:
            assert resp.status == 202  # not mountable for mounter: an upload starts instead
        assert await staged(services, "own") == set()
        for digest in image.blobs:
            async with http.post(
                e2e.url(f"/v2/{BASE}/blobs/uploads/"),
                params={"mount": digest, "from": "team/other"},
            ) as resp:
                assert resp.status == 201, await resp.text()
                assert resp.headers["Location"] == f"/v2/{BASE}/blobs/{digest}"
        async with http.put(
            e2e.url(f"/v2/{BASE}/manifests/mounted"),
            data=image.manifest,
            headers={"Content-Type": image.media_type},
        ) as resp:
            assert resp.status == 201, await resp.text()
    assert (await versions(e2e))[0].principal == "mounter"


async def staged(services: Services, name: str) -> set[str]:
    """Digests staged (pushed, not yet in a manifest) in repository `name`, from the database."""
    from sqlalchemy import select

    from server.store.schema import RepositoryRow, StagedBlobRow

    async with services.db.session() as session:
        rows = await session.execute(
            select(StagedBlobRow.digest)
            .join(RepositoryRow, RepositoryRow.id == StagedBlobRow.repository_id)
            .where(RepositoryRow.name == name)
        )
        return {r[0] for r in rows}


async def test_anonymous_and_viewer_pushes_are_refused_and_store_nothing(
    e2e: E2E, services: Services, grpc_target: str, admin_token: str, tmp_path: Path
) -> None:
    await push_repository(e2e)
    async with AsyncMirrorClient(grpc_target, timeout=10, token=admin_token) as admin:
        viewer = await principal_with_token(admin, "watcher", grants={"own": "viewer"})
        editor = await principal_with_token(admin, "builder", grants={"own": "editor"})
    before = stored_digests(e2e.data_dir)
    pushed = img.make_image("refused-push", layers=1, media="oci")

    # Raw HTTP: anonymous gets the challenge for a push token, the viewer 403 DENIED, and the
    # token endpoint grants the viewer pull only.
    async with aiohttp.ClientSession() as anonymous:
        async with anonymous.post(e2e.url(f"/v2/{BASE}/blobs/uploads/")) as resp:
            assert resp.status == 401
            challenge = parse_challenge(resp.headers["WWW-Authenticate"])
            assert challenge["scope"] == f"repository:{BASE}:pull,push"
        basic = base64.b64encode(f"watcher:{viewer}".encode()).decode()
        async with anonymous.get(
            e2e.url("/token"),
            params={"service": "mirror", "scope": f"repository:{BASE}:pull,push"},
            headers={"Authorization": f"Basic {basic}"},
        ) as resp:
            token = (await resp.json())["token"]
        access = jwt.decode(token, options={"verify_signature": False})["access"]
        assert access == [{"type": "repository", "name": BASE, "actions": ["pull"]}]
        async with anonymous.post(
            e2e.url(f"/v2/{BASE}/blobs/uploads/"), headers={"Authorization": f"Bearer {token}"}
        ) as resp:
            body = await resp.json()
            assert resp.status == 403
            assert body["errors"][0]["code"] == "DENIED"
            assert "watcher" in body["errors"][0]["message"]

    # skopeo: anonymous (no credentials at all) and the viewer are refused.
    e2e.auth_file = tmp_path / "no-auth.json"
    anonymous_push = await skopeo_push(e2e, pushed, "anon")
    assert anonymous_push.returncode != 0
    assert "http 401" in anonymous_push.stderr.decode().lower()  # pulls of blobs refused too
    viewer_push = await skopeo_push(e2e, pushed, "viewer", creds=f"watcher:{viewer}")
    assert viewer_push.returncode != 0
    assert "denied" in viewer_push.stderr.decode().lower()
    assert stored_digests(e2e.data_dir) == before
    assert uploads_left(e2e) == []
    assert await staged(services, "own") == set()
    assert [v.number for v in await versions(e2e)] == [0]

    # An editor of the repository pushes with its own credentials; the version names it.
    (await skopeo_push(e2e, pushed, "1.0", creds=f"builder:{editor}")).check()
    history = await versions(e2e)
    assert [v.number for v in history] == [1, 0]
    assert history[0].principal == "builder"
    assert await tags(e2e) == {"1.0": pushed.digest}


async def test_twenty_concurrent_tag_pushes_make_twenty_versions(e2e: E2E) -> None:
    await push_repository(e2e)
    image = img.make_image("concurrent", layers=1, media="oci")
    for data in image.blobs.values():
        await upload(e2e, BASE, data)
    names = [f"t{i:02d}" for i in range(20)]

    responses = await asyncio.gather(*(put_manifest(e2e, BASE, n, image) for n in names))

    assert [r.status for r in responses] == [201] * 20
    assert await tags(e2e) == {n: image.digest for n in names}
    history = await versions(e2e)
    assert [v.number for v in history] == list(range(20, -1, -1))


async def test_delete_by_tag_and_digest_and_referrers_of_pushed_manifests(e2e: E2E) -> None:
    await push_repository(e2e)
    image = img.make_image("subject", layers=1, media="oci")
    for data in image.blobs.values():
        await upload(e2e, BASE, data)
    assert (await put_manifest(e2e, BASE, "a", image)).status == 201
    assert (await put_manifest(e2e, BASE, "b", image)).status == 201
    referrer = img.make_image("referrer", layers=1, media="oci")
    doc = json.loads(referrer.manifest)
    doc["subject"] = {"mediaType": image.media_type, "digest": image.digest, "size": image.size}
    doc["artifactType"] = "application/vnd.example.sbom"
    data = json.dumps(doc).encode()
    for blob in referrer.blobs.values():
        await upload(e2e, BASE, blob)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    async with e2e.http.put(
        e2e.url(f"/v2/{BASE}/manifests/{digest}"),
        data=data,
        headers={"Content-Type": img.OCI_MANIFEST},
    ) as resp:
        assert resp.status == 201
        assert resp.headers["OCI-Subject"] == image.digest
    async with e2e.http.get(e2e.url(f"/v2/{BASE}/referrers/{image.digest}")) as resp:
        found = (await resp.json())["manifests"]
    assert [d["digest"] for d in found] == [digest]

    async with e2e.http.delete(e2e.url(f"/v2/{BASE}/manifests/a")) as resp:
        assert resp.status == 202
    assert set(await tags(e2e)) == {"b"}
    async with e2e.http.delete(e2e.url(f"/v2/{BASE}/manifests/{image.digest}")) as resp:
        assert resp.status == 202
    assert await tags(e2e) == {}
    async with e2e.http.get(e2e.url(f"/v2/{BASE}/manifests/{image.digest}")) as resp:
        assert resp.status == 404
    async with e2e.http.get(e2e.url(f"/v2/{BASE}/referrers/{image.digest}")) as resp:
        assert (await resp.json())["manifests"] == []  # referrers leave with their subject
    history = await versions(e2e)
    assert [v.source_detail for v in history[:2]] == [
        f"push: DELETE manifests/{image.digest}",
        "push: DELETE manifests/a",
    ]
    async with e2e.http.delete(e2e.url(f"/v2/{BASE}/manifests/{image.digest}")) as resp:
        assert resp.status == 404


@pytest.fixture(autouse=True)
def _needs_skopeo() -> None:
    import shutil

    if shutil.which("skopeo") is None:
        pytest.skip("skopeo is not installed")


async def test_gc_keeps_pushed_blobs_no_manifest_names_yet(e2e: E2E, services: Services) -> None:
    """Blobs pushed (uploaded or mounted) but not yet in a manifest have no blob row: garbage
    collection, even with no protection window, must keep them and their objects."""
    from tests.e2e.test_housekeeping import collect

    await push_repository(e2e)
    await push_repository(e2e, "source", "team/source")
    base = img.make_layer("gc-staged-base", 4096)
    source = img.make_image("gc-source", layers=1, media="oci", shared_base=base)
    image = img.make_image("gc-staged", layers=1, media="oci", shared_base=base)
    mounted, uploaded = base.digest, image.layers[1].digest
    # `mounted` comes from `source`, which is then deleted: its blob row is held by no
    # version any more, only by `own`'s staging. `uploaded` has no blob row at all.
    for data in source.blobs.values():
        await upload(e2e, "team/source", data)
    assert (await put_manifest(e2e, "team/source", "1", source)).status == 201
    async with e2e.http.post(
        e2e.url(f"/v2/{BASE}/blobs/uploads/"), params={"mount": mounted, "from": "team/source"}
    ) as resp:
        assert resp.status == 201, await resp.text()
    await e2e.distributions.DeleteDistribution(
        pb.DeleteDistributionRequest(name="distributions/source")
    )
    await e2e.repositories.DeleteRepository(pb.DeleteRepositoryRequest(name="repositories/source"))
    await upload(e2e, BASE, image.blobs[uploaded])
    await upload(e2e, BASE, image.config)
    assert {uploaded, mounted} <= await staged(services, "own")

    task = await collect(e2e)

    assert task.state == pb.TASK_STATE_COMPLETED, task.error
    assert {uploaded, mounted, image.config_digest} <= stored_digests(e2e.storage)
    assert (await put_manifest(e2e, BASE, "1", image)).status == 201
    for digest, data in image.blobs.items():
        async with e2e.http.get(e2e.url(f"/v2/{BASE}/blobs/{digest}")) as resp:
            assert resp.status == 200
            assert await resp.read() == data
