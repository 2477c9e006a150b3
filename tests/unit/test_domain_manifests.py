"""Manifest parsing (server/domain/manifests.py), including the CVE-2021-41190 ambiguity rules."""

from __future__ import annotations

import json
from typing import Any

import pytest

from server.domain.digests import Digest
from server.domain.manifests import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    DOCKER_SCHEMA1,
    DOCKER_SCHEMA1_SIGNED,
    FOREIGN_LAYER_TYPES,
    MAX_MANIFEST_BYTES,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    ManifestError,
    ManifestKind,
    parse_manifest,
)

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"


def desc(content: bytes, media_type: str, **extra: Any) -> dict[str, Any]:
    return {
        "mediaType": media_type,
        "digest": str(Digest.of_bytes(content)),
        "size": len(content),
        **extra,
    }


def encode(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, indent=3).encode()


def image(media_type: str | None, config_type: str, layer_type: str, **extra: Any) -> dict:
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "config": desc(b"config", config_type),
        "layers": [desc(b"layer-1", layer_type), desc(b"layer-2", layer_type)],
        **extra,
    }
    if media_type is not None:
        doc["mediaType"] = media_type
    return doc


def index(media_type: str | None, child_type: str, **extra: Any) -> dict:
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "manifests": [
            desc(b"amd64", child_type, platform={"os": "linux", "architecture": "amd64"}),
            desc(
                b"arm",
                child_type,
                platform={"os": "linux", "architecture": "arm", "variant": "v7"},
            ),
        ],
        **extra,
    }
    if media_type is not None:
        doc["mediaType"] = media_type
    return doc


# --- accepted documents -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "content_type", "media_type", "config_type", "layer_type"),
    [
        pytest.param(
            image(DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER),
            DOCKER_MANIFEST,
            DOCKER_MANIFEST,
            DOCKER_CONFIG,
            DOCKER_LAYER,
            id="docker-schema2",
        ),
        pytest.param(
            image(OCI_MANIFEST, OCI_CONFIG, OCI_LAYER),
            OCI_MANIFEST,
            OCI_MANIFEST,
            OCI_CONFIG,
            OCI_LAYER,
            id="oci-manifest",
        ),
        pytest.param(
            image(None, OCI_CONFIG, OCI_LAYER),
            OCI_MANIFEST,
            OCI_MANIFEST,
            OCI_CONFIG,
            OCI_LAYER,
            id="oci-manifest-type-from-content-type",
        ),
        pytest.param(
            image(None, OCI_CONFIG, OCI_LAYER),
            "application/json",
            OCI_MANIFEST,
            OCI_CONFIG,
            OCI_LAYER,
            id="oci-manifest-inferred-from-structure",
        ),
        pytest.param(
            image(OCI_MANIFEST, OCI_CONFIG, OCI_LAYER),
            "application/octet-stream",
            OCI_MANIFEST,
            OCI_CONFIG,
            OCI_LAYER,
            id="generic-content-type-defers-to-mediaType",
        ),
        pytest.param(
            image(OCI_MANIFEST, OCI_CONFIG, OCI_LAYER),
            "Application/VND.oci.image.manifest.v1+json; charset=utf-8",
            OCI_MANIFEST,
            OCI_CONFIG,
            OCI_LAYER,
            id="content-type-params-and-case",
        ),
    ],
)
def test_image_manifests(
    doc: dict, content_type: str, media_type: str, config_type: str, layer_type: str
) -> None:
    data = encode(doc)
    manifest = parse_manifest(data, content_type)
    assert manifest.kind is ManifestKind.IMAGE
    assert manifest.media_type == media_type
    assert manifest.data == data
    assert manifest.size == len(data)
    assert manifest.digest == Digest.of_bytes(data)
    assert manifest.config == Descriptor(Digest.of_bytes(b"config"), 6, config_type)
    assert [layer.digest for layer in manifest.layers] == [
        Digest.of_bytes(b"layer-1"),
        Digest.of_bytes(b"layer-2"),
    ]
    assert all(layer.media_type == layer_type and layer.size == 7 for layer in manifest.layers)
    assert manifest.blobs == (manifest.config, *manifest.layers)
    assert manifest.children == ()
    assert manifest.subject is None
    assert not any(layer.is_foreign for layer in manifest.layers)


@pytest.mark.parametrize(
    ("doc", "content_type", "media_type", "child_type"),
    [
        pytest.param(index(OCI_INDEX, OCI_MANIFEST), OCI_INDEX, OCI_INDEX, OCI_MANIFEST, id="oci"),
        pytest.param(
            index(DOCKER_LIST, DOCKER_MANIFEST),
            DOCKER_LIST,
            DOCKER_LIST,
            DOCKER_MANIFEST,
            id="docker-list",
        ),
        pytest.param(
            index(None, OCI_MANIFEST), OCI_INDEX, OCI_INDEX, OCI_MANIFEST, id="oci-no-mediaType"
        ),
        pytest.param(
            index(None, OCI_MANIFEST), "", OCI_INDEX, OCI_MANIFEST, id="oci-inferred-from-structure"
        ),
    ],
)
def test_indexes(doc: dict, content_type: str, media_type: str, child_type: str) -> None:
    data = encode(doc)
    manifest = parse_manifest(data, content_type)
    assert manifest.kind is ManifestKind.INDEX
    assert manifest.media_type == media_type
    assert manifest.config is None
    assert manifest.layers == ()
    assert manifest.blobs == ()
    amd64, arm = manifest.children
    assert amd64 == Descriptor(
        Digest.of_bytes(b"amd64"),
        5,
        child_type,
        platform_os="linux",
        platform_architecture="amd64",
    )
    assert (arm.platform_os, arm.platform_architecture, arm.platform_variant) == (
        "linux",
        "arm",
        "v7",
    )


def test_empty_index_is_fine() -> None:
    manifest = parse_manifest(encode({"schemaVersion": 2, "manifests": []}), OCI_INDEX)
    assert manifest.kind is ManifestKind.INDEX
    assert manifest.children == ()


def test_subject_and_artifact_type() -> None:
    subject = desc(b"the-image", OCI_MANIFEST)
    doc = image(OCI_MANIFEST, OCI_CONFIG, OCI_LAYER, subject=subject, artifactType="x/sig")
    manifest = parse_manifest(encode(doc), OCI_MANIFEST)
    assert manifest.subject == Digest.of_bytes(b"the-image")
    assert manifest.artifact_type == "x/sig"


def test_index_subject() -> None:
    doc = index(OCI_INDEX, OCI_MANIFEST, subject=desc(b"s", OCI_MANIFEST))
    assert parse_manifest(encode(doc), OCI_INDEX).subject == Digest.of_bytes(b"s")


def test_foreign_layers_detected() -> None:
    doc = image(DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER)
    doc["layers"].append(
        desc(b"windows-base", DOCKER_FOREIGN, urls=["https://mcr.microsoft.com/l/1"])
    )
    manifest = parse_manifest(encode(doc), DOCKER_MANIFEST)
    assert [layer.is_foreign for layer in manifest.layers] == [False, False, True]
    assert manifest.layers[2].urls == ("https://mcr.microsoft.com/l/1",)
    assert manifest.config is not None and not manifest.config.is_foreign


@pytest.mark.parametrize("media_type", FOREIGN_LAYER_TYPES)
def test_every_foreign_type_is_foreign(media_type: str) -> None:
    assert Descriptor(Digest.of_bytes(b""), 0, media_type).is_foreign


@pytest.mark.parametrize("media_type", [OCI_LAYER, DOCKER_LAYER, "", OCI_CONFIG])
def test_distributable_types_are_not_foreign(media_type: str) -> None:
    assert not Descriptor(Digest.of_bytes(b""), 0, media_type).is_foreign


def test_matching_digest_accepted() -> None:
    data = encode(image(OCI_MANIFEST, OCI_CONFIG, OCI_LAYER))
    assert parse_manifest(data, OCI_MANIFEST, Digest.of_bytes(data)).digest == Digest.of_bytes(data)


def test_matching_sha512_digest_accepted() -> None:
    data = encode(image(OCI_MANIFEST, OCI_CONFIG, OCI_LAYER))
    expected = Digest.of_bytes(data, "sha512")
    assert parse_manifest(data, OCI_MANIFEST, expected).digest == expected


def test_exactly_max_size_accepted() -> None:
    data = encode(image(OCI_MANIFEST, OCI_CONFIG, OCI_LAYER))
    data += b" " * (MAX_MANIFEST_BYTES - len(data))
    assert len(data) == MAX_MANIFEST_BYTES
    assert parse_manifest(data, OCI_MANIFEST).size == MAX_MANIFEST_BYTES


# --- schema1 ------------------------------------------------------------------------------------

SCHEMA1 = {
    "schemaVersion": 1,
    "name": "library/x",
    "tag": "latest",
    "architecture": "amd64",
    "fsLayers": [
        {"blobSum": str(Digest.of_bytes(b"a"))},
        {"blobSum": str(Digest.of_bytes(b"b"))},
        {"blobSum": str(Digest.of_bytes(b"a"))},
        {"blobSum": "sha256:nothex"},
        "not-an-object",
    ],
    "history": [],
}


@pytest.mark.parametrize("content_type", [DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED])
def test_schema1_accepted(content_type: str) -> None:
    data = encode(SCHEMA1)
    manifest = parse_manifest(data, content_type)
    assert manifest.kind is ManifestKind.SCHEMA1
    assert manifest.media_type == content_type
    assert manifest.config is None and manifest.layers == () and manifest.children == ()


# --- rejected documents -------------------------------------------------------------------------

REJECTED = [
    pytest.param(
        encode(image(OCI_MANIFEST, OCI_CONFIG, OCI_LAYER)), OCI_INDEX, id="mediaType-vs-ct-index"
    ),
    pytest.param(
        encode(image(DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER)),
        OCI_MANIFEST,
        id="docker-mediaType-vs-oci-ct",
    ),
    pytest.param(
        encode(index(OCI_INDEX, OCI_MANIFEST)), OCI_MANIFEST, id="index-mediaType-vs-image-ct"
    ),
    pytest.param(
        encode(index(OCI_INDEX, OCI_MANIFEST)), DOCKER_LIST, id="oci-index-vs-docker-list-ct"
    ),
    pytest.param(
        encode(index(OCI_INDEX, OCI_MANIFEST, layers=[])), OCI_INDEX, id="index-with-layers"
    ),
    pytest.param(
        encode(index(OCI_INDEX, OCI_MANIFEST, config=desc(b"c", OCI_CONFIG))),
        OCI_INDEX,
        id="index-with-config",
    ),
    pytest.param(
        encode(index(None, OCI_MANIFEST, layers=[])), OCI_INDEX, id="index-ct-with-layers"
    ),
    pytest.param(
        encode(index(DOCKER_LIST, DOCKER_MANIFEST, layers=[])),
        DOCKER_LIST,
        id="docker-list-with-layers",
    ),
    pytest.param(
        encode(image(OCI_MANIFEST, OCI_CONFIG, OCI_LAYER, manifests=[])),
        OCI_MANIFEST,
        id="image-with-manifests",
    ),
    pytest.param(
        encode(image(None, OCI_CONFIG, OCI_LAYER, manifests=[])),
        OCI_MANIFEST,
        id="image-ct-with-manifests",
    ),
    pytest.param(
        encode(image(DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER, manifests=[])),
        DOCKER_MANIFEST,
        id="docker-image-with-manifests",
    ),
    pytest.param(
        encode(image(None, OCI_CONFIG, OCI_LAYER, manifests=[])),
        "application/json",
        id="ambiguous-config-and-manifests",
    ),
    pytest.param(
        encode(index(None, OCI_MANIFEST, layers=[])), "", id="ambiguous-manifests-and-layers"
    ),
    pytest.param(
        encode({"schemaVersion": 2, "manifests": [], "layers": [], "config": {}}),
        "",
        id="ambiguous-everything",
    ),
    pytest.param(encode({"schemaVersion": 2, "layers": []}), "", id="no-type-layers-only"),
    pytest.param(encode({"schemaVersion": 2}), "", id="no-type-no-structure"),
    pytest.param(encode(SCHEMA1), "application/json", id="schema1-needs-its-content-type"),
    pytest.param(b"not json", OCI_MANIFEST, id="not-json"),
    pytest.param(b"", OCI_MANIFEST, id="empty"),
    pytest.param(b"\xff\xfe{}", OCI_MANIFEST, id="invalid-utf8"),
    pytest.param(b"[]", OCI_MANIFEST, id="json-array"),
    pytest.param(b'"manifest"', OCI_MANIFEST, id="json-string"),
    pytest.param(b"null", OCI_MANIFEST, id="json-null"),
    pytest.param(encode({**image(None, OCI_CONFIG, OCI_LAYER), "mediaType": 5}), "", id="mt-int"),
    pytest.param(
        encode({**image(OCI_MANIFEST, OCI_CONFIG, OCI_LAYER), "layers": {}}),
        OCI_MANIFEST,
        id="layers-not-list",
    ),
    pytest.param(
        encode({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []}),
        OCI_MANIFEST,
        id="image-without-config",
    ),
    pytest.param(
        encode({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {}}),
        OCI_MANIFEST,
        id="image-without-layers",
    ),
    pytest.param(
        encode({"schemaVersion": 2, "mediaType": OCI_INDEX}), OCI_INDEX, id="index-no-manifests"
    ),
    pytest.param(
        encode({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": {}}),
        OCI_INDEX,
        id="index-manifests-not-list",
    ),
    pytest.param(
        encode({**image(OCI_MANIFEST, OCI_CONFIG, OCI_LAYER), "artifactType": 1}),
        OCI_MANIFEST,
        id="artifactType-not-string",
    ),
    pytest.param(
        encode({**image(OCI_MANIFEST, OCI_CONFIG, OCI_LAYER), "subject": "sha256:x"}),
        OCI_MANIFEST,
        id="subject-not-descriptor",
    ),
]


@pytest.mark.parametrize(("data", "content_type"), REJECTED)
def test_rejected(data: bytes, content_type: str) -> None:
    with pytest.raises(ManifestError):
        parse_manifest(data, content_type)


def test_disagreement_message_names_both_types() -> None:
    with pytest.raises(ManifestError, match="disagrees with Content-Type"):
        parse_manifest(encode(image(OCI_MANIFEST, OCI_CONFIG, OCI_LAYER)), OCI_INDEX)


BAD_DESCRIPTORS = [
    pytest.param("not-an-object", id="string"),
    pytest.param({"size": 1, "mediaType": OCI_LAYER}, id="no-digest"),
    pytest.param({"digest": "sha256:zz", "size": 1}, id="bad-digest"),
    pytest.param({"digest": str(Digest.of_bytes(b"")), "size": -1}, id="negative-size"),
    pytest.param({"digest": str(Digest.of_bytes(b"")), "size": "1"}, id="string-size"),
    pytest.param({"digest": str(Digest.of_bytes(b"")), "size": True}, id="bool-size"),
    pytest.param({"digest": str(Digest.of_bytes(b"")), "size": 1.5}, id="float-size"),
    pytest.param({"digest": str(Digest.of_bytes(b""))}, id="no-size"),
    pytest.param(
        {"digest": str(Digest.of_bytes(b"")), "size": 0, "mediaType": 3}, id="mediaType-int"
    ),
    pytest.param(
        {"digest": str(Digest.of_bytes(b"")), "size": 0, "urls": "https://x"}, id="urls-string"
    ),
    pytest.param(
        {"digest": str(Digest.of_bytes(b"")), "size": 0, "platform": ["linux"]},
        id="platform-list",
    ),
]


@pytest.mark.parametrize("bad", BAD_DESCRIPTORS)
def test_bad_layer_descriptor_rejected(bad: object) -> None:
    doc = image(OCI_MANIFEST, OCI_CONFIG, OCI_LAYER)
    doc["layers"].append(bad)
    with pytest.raises(ManifestError, match=r"layers\[2\]"):
        parse_manifest(encode(doc), OCI_MANIFEST)


@pytest.mark.parametrize("bad", BAD_DESCRIPTORS)
def test_bad_config_descriptor_rejected(bad: object) -> None:
    doc = image(OCI_MANIFEST, OCI_CONFIG, OCI_LAYER, config=bad)
    with pytest.raises(ManifestError, match="config"):
        parse_manifest(encode(doc), OCI_MANIFEST)


@pytest.mark.parametrize("bad", BAD_DESCRIPTORS)
def test_bad_child_descriptor_rejected(bad: object) -> None:
    doc = index(OCI_INDEX, OCI_MANIFEST)
    doc["manifests"].insert(0, bad)
    with pytest.raises(ManifestError, match=r"manifests\[0\]"):
        parse_manifest(encode(doc), OCI_INDEX)


def test_digest_mismatch_rejected() -> None:
    data = encode(image(OCI_MANIFEST, OCI_CONFIG, OCI_LAYER))
    with pytest.raises(ManifestError, match="hashes to"):
        parse_manifest(data, OCI_MANIFEST, Digest.of_bytes(data + b" "))


def test_digest_mismatch_sha512_rejected() -> None:
    data = encode(image(OCI_MANIFEST, OCI_CONFIG, OCI_LAYER))
    with pytest.raises(ManifestError):
        parse_manifest(data, OCI_MANIFEST, Digest.of_bytes(b"other", "sha512"))


def test_oversized_rejected() -> None:
    data = encode(image(OCI_MANIFEST, OCI_CONFIG, OCI_LAYER))
    data += b" " * (MAX_MANIFEST_BYTES + 1 - len(data))
    with pytest.raises(ManifestError, match="larger than"):
        parse_manifest(data, OCI_MANIFEST)


@pytest.mark.parametrize(
    "doc",
    [
        pytest.param(image(DOCKER_CONFIG, OCI_CONFIG, OCI_LAYER), id="image-declaring-config"),
        pytest.param(index("text/plain", OCI_MANIFEST), id="index-declaring-text"),
    ],
)
def test_unknown_declared_media_type_rejected(doc: dict) -> None:
    with pytest.raises(ManifestError):
        parse_manifest(encode(doc), "application/octet-stream")
