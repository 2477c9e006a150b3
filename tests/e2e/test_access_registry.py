"""Access control of the registry endpoint, with the real skopeo and raw HTTP.

Private distributions (the default) answer 401 with the Docker token challenge; `skopeo login`
with a principal's API token then `skopeo copy --all` pulls byte-identical content; anonymous
pulls are refused; a public distribution pulls anonymously. Bearer tokens: tampered, expired,
unsigned and foreign ones are refused, and a token for one repository does not pull another.
`_catalog` lists only what the caller may pull.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import shutil
import ssl
import time
from pathlib import Path

import aiohttp
import jwt
import pytest
from google.protobuf import field_mask_pb2

from client import AsyncMirrorClient
from client.auth import channel_credentials, read_token_file
from protos import mirror_pb2 as pb
from server.app import build_services, start_grpc, start_registry
from server.config import Settings
from tests.e2e.conftest import (
    E2E,
    check_oci_layout,
    needs_registry,
    needs_skopeo,
    run_skopeo,
    write_auth_file,
)
from tests.support import images as img
from tests.support.access import principal_with_token
from tests.support.certs import CertificateAuthority
from tests.support.registry import RegistryProcess
from tests.support.registry_auth import parse_challenge

pytestmark = [pytest.mark.registry, needs_registry, pytest.mark.skopeo, needs_skopeo]


def basic(user: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()}


async def get(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    async with http.get(url, headers=headers or {}) as resp:
        return resp.status, dict(resp.headers), await resp.read()


async def registry_token(e2e: E2E, http: aiohttp.ClientSession, scope: str, auth: dict) -> str:
    status, _, body = await get(http, e2e.url(f"/token?service=mirror&scope={scope}"), headers=auth)
    assert status == 200, body
    return json.loads(body)["token"]


@pytest.fixture
async def published(e2e: E2E, upstream_registry: RegistryProcess, upstream_name: str) -> img.Index:
    """`private/app` (repository `app`) and `private/other` (repository `other`)."""
    index = img.make_index("access-index", media="oci")
    await img.push_index(upstream_registry.url, upstream_name, "v1", index)
    other = img.make_image("access-other", layers=1)
    await img.push_image(upstream_registry.url, upstream_name + "-o", "v1", other)
    await e2e.publish("app", upstream_registry.url, upstream_name, "private/app")
    await e2e.publish("other", upstream_registry.url, upstream_name + "-o", "private/other")
    return index


@pytest.fixture
async def puller(grpc_target: str, admin_token: str) -> str:
    """A principal with no role but a viewer grant on repository `app` -> its token."""
    async with AsyncMirrorClient(grpc_target, timeout=10, token=admin_token) as admin:
        return await principal_with_token(admin, "puller", grants={"app": "viewer"})


async def test_skopeo_login_and_copy_all_from_a_private_distribution(
    e2e: E2E, published: img.Index, puller: str, tmp_path: Path
) -> None:
    ref = e2e.ref("private/app", "v1")
    # Anonymous: refused.
    e2e.auth_file = tmp_path / "empty-auth.json"
    anonymous = await e2e.copy("private/app", "v1", f"oci:{e2e.new_dir('anon')}")
    assert anonymous.returncode != 0
    assert b"unauthorized" in anonymous.stderr.lower(), anonymous.stderr

    # A wrong token: login fails.
    e2e.auth_file = tmp_path / "auth.json"
    bad = await e2e.skopeo(
        "login", "--tls-verify=false", "-u", "puller", "-p", "mirror_wrong", e2e.endpoint
    )
    assert bad.returncode != 0

    # skopeo login with the principal's token, then copy --all: byte-identical.
    (
        await e2e.skopeo("login", "--tls-verify=false", "-u", "puller", "-p", puller, e2e.endpoint)
    ).check()
    assert (
        "puller"
        in base64.b64decode(
            json.loads(e2e.auth_file.read_text())["auths"][e2e.endpoint]["auth"]
        ).decode()
    )
    out = e2e.new_dir("logged-in")
    (await e2e.copy("private/app", "v1", f"oci:{out}")).check()
    check_oci_layout(out, published)

    # The same login does not reach a repository the principal has no grant on.
    refused = await e2e.skopeo("inspect", "--tls-verify=false", e2e.ref("private/other", "v1"))
    assert refused.returncode != 0
    assert ref != e2e.ref("private/other", "v1")


async def test_public_distribution_pulls_anonymously(
    e2e: E2E, published: img.Index, tmp_path: Path
) -> None:
    async with aiohttp.ClientSession() as http:  # no credentials, no token dance
        status, _, _ = await get(http, e2e.url("/v2/private/app/manifests/v1"))
        assert status == 401
        await e2e.distributions.UpdateDistribution(
            pb.UpdateDistributionRequest(
                distribution=pb.Distribution(name="distributions/app", public=True),
                update_mask=field_mask_pb2.FieldMask(paths=["public"]),
            )
        )
        status, headers, body = await get(http, e2e.url("/v2/private/app/manifests/v1"))
        assert status == 200
        assert headers["Docker-Content-Digest"] == published.digest
        assert body == published.manifest
        # Only the public one is in an anonymous catalog (with any token the realm gives).
        token = await registry_token(e2e, http, "registry:catalog:*", {})
        status, _, body = await get(
            http, e2e.url("/v2/_catalog"), {"Authorization": f"Bearer {token}"}
        )
        assert (status, json.loads(body)) == (200, {"repositories": ["private/app"]})

    e2e.auth_file = tmp_path / "empty-auth.json"
    out = e2e.new_dir("anonymous")
    (await e2e.copy("private/app", "v1", f"oci:{out}")).check()
    check_oci_layout(out, published)


async def test_bearer_tokens_scoped_signed_and_short_lived(
    e2e: E2E, published: img.Index, puller: str, admin_token: str
) -> None:
    manifest = e2e.url("/v2/private/app/manifests/v1")
    async with aiohttp.ClientSession() as http:
        status, headers, body = await get(http, manifest)
        assert status == 401
        assert json.loads(body)["errors"][0]["code"] == "UNAUTHORIZED"
        challenge = parse_challenge(headers["WWW-Authenticate"])
        assert challenge == {
            "realm": f"http://{e2e.endpoint}/token",
            "service": "mirror",
            "scope": "repository:private/app:pull",
        }

        # Bad Basic credentials: no token at all.
        for auth in (basic("puller", "mirror_nope"), basic("admin", puller), basic("x", "")):
            status, _, _ = await get(
                http, e2e.url("/token?service=mirror&scope=repository:private/app:pull"), auth
            )
            assert status == 401

        good = await registry_token(
            e2e, http, "repository:private/app:pull", basic("puller", puller)
        )
        bearer = {"Authorization": f"Bearer {good}"}
        status, headers, _ = await get(http, manifest, bearer)
        assert (status, headers["Docker-Content-Digest"]) == (200, published.digest)

        # The token for app does not pull other; nor does a token the principal asks for
        # other (it carries no access there).
        other = e2e.url("/v2/private/other/manifests/v1")
        status, headers, _ = await get(http, other, bearer)
        assert status == 401
        assert 'error="insufficient_scope"' in headers["WWW-Authenticate"]
        for_other = await registry_token(
            e2e, http, "repository:private/other:pull", basic("puller", puller)
        )
        assert jwt.decode(for_other, options={"verify_signature": False})["access"] == []
        status, _, _ = await get(http, other, {"Authorization": f"Bearer {for_other}"})
        assert status == 401

        # Tampered: a flipped signature byte, or claims rewritten without the key.
        head, payload, signature = good.split(".")
        flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
        claims = jwt.decode(good, options={"verify_signature": False})
        claims["access"][0]["name"] = "private/other"
        forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")
        key = (e2e.data_dir / "registry-token.key").read_bytes()
        now = int(time.time())
        expired = jwt.encode({**claims, "iat": now - 900, "exp": now - 600}, key, "HS256")
        unsigned = jwt.encode(claims, None, algorithm="none")
        for label, token, url in [
            ("flipped signature", f"{head}.{payload}.{flipped}", manifest),
            ("rewritten claims", f"{head}.{forged_payload.decode()}.{signature}", other),
            ("expired", expired, other),
            ("alg none", unsigned, other),
            ("garbage", "not-a-jwt", manifest),
        ]:
            status, headers, _ = await get(http, url, {"Authorization": f"Bearer {token}"})
            assert status == 401, label
            assert 'error="invalid_token"' in headers["WWW-Authenticate"], label

        # _catalog lists what the caller may pull.
        async def catalog(auth: dict[str, str]) -> list[str]:
            token = await registry_token(e2e, http, "registry:catalog:*", auth)
            status, _, body = await get(
                http, e2e.url("/v2/_catalog"), {"Authorization": f"Bearer {token}"}
            )
            assert status == 200
            return json.loads(body)["repositories"]

        assert await catalog(basic("puller", puller)) == ["private/app"]
        assert await catalog(basic("admin", admin_token)) == ["private/app", "private/other"]
        assert await catalog({}) == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_tls_on_the_registry_port_with_skopeo_cert_dir(
    settings: Settings,
    upstream_registry: RegistryProcess,
    upstream_name: str,
    tmp_path: Path,
) -> None:
    """Both ports on TLS with a certificate the test makes; skopeo trusts its CA through
    `--src-cert-dir` (and refuses the port without it); mirrorctl-style clients through a
    CA file."""
    ca = CertificateAuthority(tmp_path / "pki")
    issued = ca.issue("server", "mirror", server=True)
    tls = dataclasses.replace(settings, tls_cert=issued.cert, tls_key=issued.key)
    image = img.make_image("tls-image", layers=2, layer_size=1024)
    await img.push_image(upstream_registry.url, upstream_name, "v1", image)
    cert_dir = tmp_path / "certs.d"
    cert_dir.mkdir()
    shutil.copy(ca.cert, cert_dir / "ca.crt")
    async with build_services(tls) as services:
        grpc_server, grpc_port = await start_grpc(services, "127.0.0.1:0")
        runner, port = await start_registry(services, "127.0.0.1:0")
        endpoint = f"127.0.0.1:{port}"
        token = read_token_file(tls.admin_token_file)
        try:
            async with AsyncMirrorClient(
                f"127.0.0.1:{grpc_port}",
                timeout=30,
                token=token,
                credentials=channel_credentials(ca.cert),
            ) as client:
                await client.create_repository("tls")
                await client.create_remote("tls", upstream_registry.url, upstream_name)
                async with asyncio.timeout(30):
                    events = [e async for e in client.sync("tls", "tls")]
                assert events[-1].task.state == pb.TASK_STATE_COMPLETED
                await client.create_distribution("tls", "secure/app", repository="tls")

            auth_file = write_auth_file(tmp_path / "auth.json", endpoint, "admin", token)
            ref = f"docker://{endpoint}/secure/app:v1"
            untrusted = await run_skopeo(auth_file, "inspect", ref)
            assert untrusted.returncode != 0
            assert b"certificate" in untrusted.stderr.lower(), untrusted.stderr
            out = tmp_path / "tls-copy"
            copied = await run_skopeo(
                auth_file,
                "copy",
                "--all",
                "--preserve-digests",
                "--src-cert-dir",
                str(cert_dir),
                ref,
                f"oci:{out}",
            )
            copied.check()
            check_oci_layout(out, image)
            # The realm in the challenge is https on this port.
            context = ssl.create_default_context(cafile=str(ca.cert))
            async with aiohttp.ClientSession() as http:
                async with http.get(
                    f"https://{endpoint}/v2/secure/app/tags/list", ssl=context
                ) as resp:
                    assert resp.status == 401
                    challenge = parse_challenge(resp.headers["WWW-Authenticate"])
            assert challenge["realm"] == f"https://{endpoint}/token"
        finally:
            await runner.cleanup()
            await grpc_server.stop(None)
