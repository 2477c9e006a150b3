"""The three benchmark workloads: deterministic content, pushed once per invocation.

* many-tags: many tags over fewer distinct images (2 tiny layers each + one shared base layer),
  Docker and OCI manifests alternating;
* big-blobs: few tags over ~1 GiB of incompressible layers of 25-50 MiB (``benchmarks.layers``);
* multi-arch: OCI image indexes and Docker manifest lists (alternating) over 3 platforms.

Each workload also prepares its *moves*: 5 % of its tags (at least one) re-pointed to other
manifests: the even-numbered moves to a never-seen manifest (a "new build": new manifest, new
blobs), the odd-numbered ones to another manifest already in the workload (a re-tag). Every
manifest a move needs is pushed by digest up front, so :meth:`Workload.move` and
:meth:`Workload.restore` are manifest PUTs only.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from benchmarks.common import MIB
from benchmarks.layers import PushedLayer, image_documents, push_random_layer
from tests.support.images import (
    DOCKER_MANIFEST,
    Image,
    Index,
    RegistryClient,
    digest_of,
    make_image,
    make_index,
    make_layer,
)

SEED = "mirror-bench-1"
MOVE_FRACTION = 0.05
PUSH_CONCURRENCY = 8
WORKLOAD_NAMES = ("many-tags", "big-blobs", "multi-arch", "many-tags-10k")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Sizes:
    """How big each workload is (the full set, or the --quick one)."""

    many_tags: int
    many_manifests: int
    big_tags: int
    big_total: int
    big_min: int
    big_max: int
    multi_tags: int
    scale_tags: int
    scale_manifests: int
    tiny_layer: int = 1024


FULL = Sizes(
    many_tags=1000,
    many_manifests=200,
    big_tags=20,
    big_total=1024 * MIB,
    big_min=25 * MIB,
    big_max=50 * MIB,
    multi_tags=100,
    scale_tags=10_000,
    scale_manifests=2_000,
)
QUICK = Sizes(
    many_tags=100,
    many_manifests=20,
    big_tags=4,
    big_total=32 * MIB,
    big_min=8 * MIB,
    big_max=8 * MIB,
    multi_tags=10,
    scale_tags=1_000,
    scale_manifests=200,
)


@dataclass(frozen=True, slots=True)
class Ref:
    """A manifest a tag can point at."""

    digest: str
    media_type: str
    manifest: bytes


@dataclass
class Workload:
    """A workload in the registry: its tags now, and the moves of the re-sync phase."""

    name: str
    repo: str
    tags: dict[str, Ref]
    moves: dict[str, Ref]
    manifests: int
    blobs: int
    blob_bytes: int
    new_on_move: int
    push_seconds: float = 0.0
    moved: bool = False
    notes: list[str] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        return {
            "repo": self.repo,
            "tags": len(self.tags),
            "distinct_manifests": self.manifests,
            "distinct_blobs": self.blobs,
            "blob_bytes": self.blob_bytes,
            "moved_tags": len(self.moves),
            "moved_to_new_manifests": self.new_on_move,
            "push_seconds": round(self.push_seconds, 2),
        }

    async def move(self, client: RegistryClient) -> None:
        """Re-point the moved tags at their other manifests."""
        await _put_tags(client, self.repo, self.moves)
        self.moved = True

    async def restore(self, client: RegistryClient) -> None:
        """Point the moved tags back where they were (no-op when not moved)."""
        if self.moved:
            await _put_tags(client, self.repo, {t: self.tags[t] for t in self.moves})
            self.moved = False


async def _limited(factories: Iterable[Callable[[], Awaitable[T]]], limit: int) -> list[T]:
    slots = asyncio.Semaphore(limit)

    async def one(factory: Callable[[], Awaitable[T]]) -> T:
        async with slots:
            return await factory()

    return list(await asyncio.gather(*(one(f) for f in factories)))


async def _put_tags(client: RegistryClient, repo: str, tags: dict[str, Ref]) -> None:
    def put(tag: str, ref: Ref) -> Callable[[], Awaitable[str]]:
        return lambda: client.put_manifest(repo, tag, ref.manifest, ref.media_type)

    await _limited((put(t, r) for t, r in tags.items()), PUSH_CONCURRENCY)


def _ref(artifact: Image | Index) -> Ref:
    return Ref(artifact.digest, artifact.media_type, artifact.manifest)


def _plan_moves(name: str, tags: dict[str, Ref], others: list[Ref]) -> dict[str, Ref | int]:
    """5 % of the tags (at least one), each to another existing manifest (a ``Ref``) or, for
    the even-numbered moves, to the ``j``-th never-seen manifest (the int ``j``)."""
    rng = random.Random(f"{SEED}:{name}:moves")
    count = max(1, round(len(tags) * MOVE_FRACTION))
    plan: dict[str, Ref | int] = {}
    for j, tag in enumerate(sorted(rng.sample(sorted(tags), count))):
        choices = [r for r in others if r.digest != tags[tag].digest]
        plan[tag] = j if j % 2 == 0 or not choices else choices[rng.randrange(len(choices))]
    return plan


async def build_many_tags(
    client: RegistryClient,
    sizes: Sizes,
    name: str = "many-tags",
    tag_count: int | None = None,
    image_count: int | None = None,
) -> Workload:
    """many-tags, or many-tags-10k: the same shape with ten times the tags and images."""
    repo = f"bench/{name}"
    base = make_layer(f"{SEED}:{name}:base", size=4 * sizes.tiny_layer)

    def image(label: str, i: int) -> Image:
        media = "docker" if i % 2 == 0 else "oci"
        return make_image(
            f"{SEED}:{name}:{label}", 2, sizes.tiny_layer, media=media, shared_base=base
        )

    images = [image(str(i), i) for i in range(image_count or sizes.many_manifests)]
    tags = {f"v{i:05d}": _ref(images[i % len(images)]) for i in range(tag_count or sizes.many_tags)}
    plan = _plan_moves(name, tags, [_ref(i) for i in images])
    fresh = {j: image(f"moved:{j}", j) for j in plan.values() if isinstance(j, int)}
    moves = {t: _ref(fresh[j]) if isinstance(j, int) else j for t, j in plan.items()}
    await client.push_blob(repo, base.blob, base.digest)
    everything = images + list(fresh.values())
    await _limited(
        ((lambda im=im: client.push_image(repo, None, im)) for im in everything), PUSH_CONCURRENCY
    )
    await _put_tags(client, repo, tags)
    blobs: dict[str, int] = {}
    for im in images:
        blobs.update({d: len(b) for d, b in im.blobs.items()})
    return Workload(
        name, repo, tags, moves, len(images), len(blobs), sum(blobs.values()), len(fresh)
    )


async def build_multi_arch(client: RegistryClient, sizes: Sizes) -> Workload:
    name, repo = "multi-arch", "bench/multi-arch"
    base = make_layer(f"{SEED}:{name}:base", size=4 * sizes.tiny_layer)

    def index(label: str, i: int) -> Index:
        media = "oci" if i % 2 == 0 else "docker"
        return make_index(
            f"{SEED}:{name}:{label}",
            media=media,
            layers=1,
            layer_size=sizes.tiny_layer,
            shared_base=base,
        )

    indexes = [index(str(i), i) for i in range(sizes.multi_tags)]
    tags = {f"r{i:04d}": _ref(ix) for i, ix in enumerate(indexes)}
    plan = _plan_moves(name, tags, [_ref(ix) for ix in indexes])
    fresh = {j: index(f"moved:{j}", j) for j in plan.values() if isinstance(j, int)}
    moves = {t: _ref(fresh[j]) if isinstance(j, int) else j for t, j in plan.items()}
    await client.push_blob(repo, base.blob, base.digest)
    await _limited(
        ((lambda ix=ix: client.push_index(repo, None, ix)) for ix in [*indexes, *fresh.values()]),
        PUSH_CONCURRENCY,
    )
    await _put_tags(client, repo, tags)
    blobs: dict[str, int] = {}
    manifests: set[str] = set()
    for ix in indexes:
        blobs.update({d: len(b) for d, b in ix.blobs.items()})
        manifests.update(ix.manifests)
    return Workload(
        name, repo, tags, moves, len(manifests), len(blobs), sum(blobs.values()), len(fresh)
    )


async def _push_big_image(
    client: RegistryClient, registry_url: str, repo: str, label: str, layer_sizes: list[int]
) -> tuple[Ref, int]:
    """Push one image of fresh random layers -> (its ref, bytes of its blobs)."""
    layers: list[PushedLayer] = []
    for k, size in enumerate(layer_sizes):
        layer = await push_random_layer(client.session, registry_url, repo, f"{label}:{k}", size)
        layers.append(layer)
    config, manifest = image_documents(label, layers)
    await client.push_blob(repo, config)
    digest = await client.put_manifest(repo, digest_of(manifest), manifest, DOCKER_MANIFEST)
    return Ref(digest, DOCKER_MANIFEST, manifest), len(config) + sum(x.size for x in layers)


async def build_big_blobs(client: RegistryClient, registry_url: str, sizes: Sizes) -> Workload:
    name, repo = "big-blobs", "bench/big-blobs"
    rng = random.Random(f"{SEED}:{name}:sizes")
    layer_sizes: list[int] = []
    while sum(layer_sizes) < sizes.big_total:
        layer_sizes.append(rng.randint(sizes.big_min, sizes.big_max))
    per_image: list[list[int]] = [[] for _ in range(sizes.big_tags)]
    for k, size in enumerate(layer_sizes):
        per_image[k % sizes.big_tags].append(size)
    refs: list[Ref] = []
    total = 0
    for i, image_sizes in enumerate(per_image):
        label = f"{SEED}:{name}:{i}"
        ref, size = await _push_big_image(client, registry_url, repo, label, image_sizes)
        refs.append(ref)
        total += size
    tags = {f"b{i:03d}": ref for i, ref in enumerate(refs)}
    plan = _plan_moves(name, tags, refs)
    moves: dict[str, Ref] = {}
    for tag, target in plan.items():
        if isinstance(target, int):
            label = f"{SEED}:{name}:moved:{target}"
            size = rng.randint(sizes.big_min, sizes.big_max)
            moves[tag], _ = await _push_big_image(client, registry_url, repo, label, [size])
        else:
            moves[tag] = target
    await _put_tags(client, repo, tags)
    fresh = sum(isinstance(t, int) for t in plan.values())
    return Workload(name, repo, tags, moves, len(refs), len(layer_sizes) + len(refs), total, fresh)


async def build(name: str, registry_url: str, sizes: Sizes) -> Workload:
    """Generate workload ``name`` and push it into the registry at ``registry_url``."""
    started = time.perf_counter()
    async with RegistryClient(registry_url) as client:
        if name == "many-tags":
            workload = await build_many_tags(client, sizes)
        elif name == "big-blobs":
            workload = await build_big_blobs(client, registry_url, sizes)
        elif name == "many-tags-10k":
            workload = await build_many_tags(
                client, sizes, name, sizes.scale_tags, sizes.scale_manifests
            )
        elif name == "multi-arch":
            workload = await build_multi_arch(client, sizes)
        else:
            raise ValueError(f"unknown workload {name!r}")
    workload.push_seconds = time.perf_counter() - started
    return workload


__all__ = [
    "FULL",
    "QUICK",
    "WORKLOAD_NAMES",
    "Ref",
    "Sizes",
    "Workload",
    "build",
]
