"""DistributionService as the registry endpoint sees it: ``registry_path`` is exactly what to
pull, and creating, moving and deleting a distribution changes what the endpoint serves."""

from __future__ import annotations

import json

import pytest
from google.protobuf import field_mask_pb2

from protos import mirror_pb2 as pb
from tests.e2e.conftest import E2E, needs_registry, needs_skopeo
from tests.support import images as img
from tests.support.registry import RegistryProcess

pytestmark = [pytest.mark.registry, needs_registry]


async def get_json(e2e: E2E, path: str) -> tuple[int, dict[str, object]]:
    async with e2e.http.get(e2e.url(path)) as resp:
        return resp.status, json.loads(await resp.read())


@pytest.mark.skopeo
@needs_skopeo
async def test_registry_path_is_what_to_pull_and_follows_updates(
    e2e: E2E, upstream_registry: RegistryProcess, upstream_name: str
) -> None:
    image = img.make_image("dist-basics", layers=1, media="oci")
    await img.push_image(upstream_registry.url, upstream_name, "v1", image)
    await e2e.setup("app", upstream_registry.url, upstream_name)
    await e2e.sync("app")

    created = await e2e.distribute("app", "mirror/app", repository="repositories/app")
    assert created.name == "distributions/app"
    assert created.base_path == "mirror/app"
    assert created.registry_path == f"{e2e.endpoint}/mirror/app"
    got = (
        await e2e.distributions.GetDistribution(pb.GetDistributionRequest(name=created.name))
    ).distribution
    assert got.registry_path == created.registry_path
    listed = (
        await e2e.distributions.ListDistributions(pb.ListDistributionsRequest())
    ).distributions
    assert [(d.name, d.registry_path) for d in listed] == [(created.name, created.registry_path)]

    # registry_path, used verbatim as an image reference, pulls the image
    result = await e2e.skopeo(
        "inspect", "--tls-verify=false", f"docker://{created.registry_path}:v1"
    )
    assert json.loads(result.check().stdout)["Digest"] == image.digest

    # moving the base path moves what is served
    updated = (
        await e2e.distributions.UpdateDistribution(
            pb.UpdateDistributionRequest(
                distribution=pb.Distribution(name=created.name, base_path="moved/app"),
                update_mask=field_mask_pb2.FieldMask(paths=["base_path"]),
            )
        )
    ).distribution
    assert updated.registry_path == f"{e2e.endpoint}/moved/app"
    assert updated.repository == "repositories/app"
    status, body = await get_json(e2e, "/v2/moved/app/tags/list")
    assert (status, body) == (200, {"name": "moved/app", "tags": ["v1"]})
    status, body = await get_json(e2e, "/v2/mirror/app/tags/list")
    assert status == 404
    assert body["errors"][0]["code"] == "NAME_UNKNOWN"  # type: ignore[index]
    status, body = await get_json(e2e, "/v2/_catalog")
    assert body == {"repositories": ["moved/app"]}

    # deleting it stops serving; the content stays in the repository
    await e2e.distributions.DeleteDistribution(pb.DeleteDistributionRequest(name=created.name))
    status, body = await get_json(e2e, "/v2/moved/app/tags/list")
    assert status == 404
    assert body["errors"][0]["code"] == "NAME_UNKNOWN"  # type: ignore[index]
    status, body = await get_json(e2e, "/v2/_catalog")
    assert body == {"repositories": []}
    assert set(await e2e.blobs("app")) == set(image.blobs)
