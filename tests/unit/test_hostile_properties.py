"""Property-based tests (Hypothesis) of the parsers an upstream feeds: manifests and indexes,
strict JSON, token responses, tag lists, auth challenges, Range headers, URL origins.

The property is the same everywhere: any input gives a result or the parser's own error (a
clear task error upstream), never another exception (which would end a task as INTERNAL).
Example counts are moderate so the suite stays fast; `EXAMPLES` records how many ran.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.domain import strictjson
from server.domain.errors import UpstreamError
from server.domain.manifests import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    MANIFEST_TYPES,
    OCI_INDEX,
    OCI_MANIFEST,
    ManifestError,
    parse_manifest,
)
from server.registry.ranges import RangeKind, classify_range
from server.sync.auth import parse_challenge, parse_token_response
from server.sync.origins import Origin, registrable_domain
from server.sync.upstream import parse_tag_list
from tests.support import images as img

EXAMPLES: Counter[str] = Counter()
FAST = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=25,
)
DIGEST = "sha256:" + "ab" * 32
spec_keys = st.sampled_from(
    ["schemaVersion", "mediaType", "config", "layers", "manifests", "subject", "digest", "size"]
)


def _descriptor() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "mediaType": st.sampled_from([*MANIFEST_TYPES, "x", ""]) | st.text(max_size=300),
            "digest": st.sampled_from([DIGEST, "sha256:zz", "", "md5:00"]) | st.text(max_size=80),
            "size": st.integers(-5, 2**70) | json_scalars,
        },
        optional={"platform": json_values, "urls": json_values, "annotations": json_values},
    )


manifest_docs = st.fixed_dictionaries(
    {"schemaVersion": st.sampled_from([2, 1, "2"])},
    optional={
        "mediaType": st.sampled_from([OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST])
        | st.text(max_size=40),
        "config": _descriptor() | json_values,
        "layers": st.lists(_descriptor(), max_size=4) | json_values,
        "manifests": st.lists(_descriptor(), max_size=4) | json_values,
        "subject": _descriptor() | json_values,
        "artifactType": json_scalars,
    },
)


def _case_variant(key: str, flip: int) -> str:
    return "".join(c.upper() if (i + flip) % 2 else c for i, c in enumerate(key))


@FAST
@given(
    doc=manifest_docs,
    content_type=st.sampled_from([*MANIFEST_TYPES, "", "text/html"]),
    mutation=st.sampled_from(["none", "duplicate", "case", "deep", "garbage"]),
    key=spec_keys,
    flip=st.integers(0, 3),
)
def test_manifest_parser_never_fails_otherwise(
    doc: dict[str, Any], content_type: str, mutation: str, key: str, flip: int
) -> None:
    text = json.dumps(doc)
    variant = _case_variant(key, flip)
    if mutation == "duplicate":
        text = text[:-1] + ', "schemaVersion": 2}'
    elif mutation == "case" and variant != key:
        text = text[:-1] + (", " if doc else "") + f'"{variant}": []}}'
    elif mutation == "deep":
        text = text[:-1] + (", " if doc else "") + '"x": ' + "[" * 3000 + "]" * 3000 + "}"
    elif mutation == "garbage":
        text = text[: len(text) // 2]
    EXAMPLES["manifest"] += 1
    try:
        manifest = parse_manifest(text.encode(), content_type)
    except ManifestError:
        EXAMPLES["manifest.refused"] += 1
        return
    # Duplicates, case variants, depth and garbage never parse.
    assert mutation == "none" or (mutation == "case" and variant == key)
    assert manifest.media_type in MANIFEST_TYPES


_VALID = json.loads(img.make_image("props", layers=2, layer_size=64).manifest)


@FAST
@given(
    field=st.sampled_from(["config", "layers"]),
    key=st.sampled_from(["digest", "size", "mediaType", "urls", "platform", "annotations"]),
    value=json_values,
)
def test_mutated_valid_manifests(field: str, key: str, value: Any) -> None:
    """A real image manifest with one descriptor field replaced by arbitrary JSON."""
    doc = json.loads(json.dumps(_VALID))
    target = doc["config"] if field == "config" else doc["layers"][0]
    target[key] = value
    EXAMPLES["manifest.mutated"] += 1
    try:
        manifest = parse_manifest(json.dumps(doc).encode(), doc["mediaType"])
    except ManifestError:
        EXAMPLES["manifest.mutated.refused"] += 1
        return
    assert len(manifest.layers) == 2
    assert all(d.size >= 0 for d in manifest.blobs)


@FAST
@given(data=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
def test_strict_json_raises_only_its_error(data: bytes) -> None:
    EXAMPLES["strictjson"] += 1
    try:
        strictjson.loads(data, spec_keys=("tags", "name"))
    except strictjson.StrictJSONError:
        pass


@FAST
@given(body=json_values, raw=st.binary(max_size=64))
def test_token_response_parser(body: Any, raw: bytes) -> None:
    for data in (json.dumps(body).encode(), raw):
        EXAMPLES["token"] += 1
        try:
            token, lifetime = parse_token_response(data, "registry.test")
        except UpstreamError:
            continue
        assert isinstance(token, str) and token
        assert lifetime > 0


@FAST
@given(
    body=json_values,
    tags=st.lists(st.text(max_size=30), max_size=20),
    raw=st.binary(max_size=64),
)
def test_tag_list_parser(body: Any, tags: list[str], raw: bytes) -> None:
    for data in (json.dumps(body).encode(), json.dumps({"tags": tags}).encode(), raw):
        EXAMPLES["taglist"] += 1
        try:
            parsed = parse_tag_list(data, "registry.test")
        except UpstreamError:
            continue
        assert all(isinstance(t, str) for t in parsed)


@FAST
@given(header=st.text(max_size=200))
def test_challenge_and_range_parsers(header: str) -> None:
    EXAMPLES["challenge"] += 1
    challenge = parse_challenge(header)
    assert challenge is None or isinstance(challenge.params, dict)
    EXAMPLES["range"] += 1
    assert classify_range(header) in RangeKind


@FAST
@given(
    url=st.text(max_size=80).map(lambda t: "http://" + t)
    | st.from_regex(r"https?://[a-zA-Z0-9.\-\[\]:]{0,40}(/.*)?", fullmatch=True)
)
def test_origins_and_domains(url: str) -> None:
    EXAMPLES["origin"] += 1
    origin = Origin.of(url)
    assert origin == Origin.of(url)
    assert not origin.host.endswith(".") or origin.host == ""
    registrable_domain(origin.host)


def test_zz_report_examples() -> None:
    """Prints how many examples ran (`pytest -s` shows it; the README records a run)."""
    print("hypothesis examples:", dict(EXAMPLES))
