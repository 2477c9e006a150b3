"""Client of one upstream repository over the OCI distribution API.

Every aiohttp exception stops here and becomes an `UpstreamError`. Retries live here only:
exponential backoff with jitter for connection errors, timeouts, 408, 429 and 5xx, honouring
Retry-After (host-wide, through `Hosts`); other 4xx are final.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import quote, urljoin, urlsplit

import aiohttp

from server import metrics
from server.config import Limits
from server.domain import strictjson
from server.domain.digests import Digest
from server.domain.errors import (
    DigestMismatch,
    UpstreamAuthError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamRejected,
    UpstreamUnavailable,
)
from server.domain.manifests import (
    ACCEPT,
    MAX_MANIFEST_BYTES,
    Descriptor,
    Manifest,
    ManifestError,
    parse_manifest,
)
from server.domain.resources import Remote
from server.sync.auth import Authorizer, read_capped
from server.sync.hosts import Hosts, RateLimiter, parse_retry_after
from server.sync.origins import NetworkPolicy, Origin, PrivateAddressRefused, normal_host
from server.sync.session import ProxySettings

log = logging.getLogger(__name__)

T = TypeVar("T")

TAGS_PAGE_SIZE = 1000
MAX_TAG_PAGE_BYTES = 4 * 1024 * 1024
MAX_ERROR_BYTES = 1024 * 1024
MAX_REDIRECTS = 5
# Bytes handed on per read of a blob body. With the session's 256 KiB read buffer, 1 MiB reads
# joined buffered data into ~2 MiB per download in flight (memray: 42 MiB of a 1 GB sync's peak).
BLOB_CHUNK = 256 * 1024
MAX_REFERRER_PAGES = 100
# Bodies larger than this are parsed in a worker thread (strict JSON walks every value).
OFF_LOOP_PARSE_BYTES = 256 * 1024
# Requests that stream blobs: bounded by throughput, not by the metadata deadline.
STREAMING_KINDS = frozenset({"blob_get", "sigstore"})
MAX_LOOKASIDE_SIGNATURES = 100
BACKOFF_BASE = 0.5
BACKOFF_MAX = 30.0


@dataclass(frozen=True, slots=True)
class ManifestHead:
    """What a HEAD (or GET) told us about a manifest reference."""

    digest: Digest | None
    media_type: str
    size: int | None


def _is_retryable(exc: UpstreamError) -> bool:
    return isinstance(exc, UpstreamUnavailable)


class Upstream:
    """Talks to one repository of one registry, for one sync."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        proxy: ProxySettings,
        remote: Remote,
        hosts: Hosts,
        *,
        backoff_base: float = BACKOFF_BASE,
        limits: Limits | None = None,
    ) -> None:
        self._session = session
        self._proxy = proxy
        self._remote = remote
        self._hosts = hosts
        self._base = remote.url.rstrip("/")
        self.host = urlsplit(self._base).netloc
        self._name = remote.upstream_name
        self.limits = limits or Limits()
        self.policy = NetworkPolicy.for_remote(remote.url, self.limits)
        self._origin = Origin.of(self._base)
        self._auth = Authorizer(session, remote, self._base, self.policy)
        self._scope = f"repository:{self._name}:pull"
        self.concurrency = remote.download_concurrency
        """Requests in flight at once: the size of any worker pool feeding this upstream."""
        self._slots = asyncio.Semaphore(remote.download_concurrency)
        self._rate = RateLimiter(remote.rate_limit)
        self._backoff_base = backoff_base
        self.requests: dict[str, int] = {}

    # -- public operations -------------------------------------------------------------

    async def list_tags(self) -> list[str]:
        """Every tag, following `Link` pagination; raises if the listing cannot complete.

        Bounded by `limits.max_tag_list_pages` pages and `limits.max_tag_list_bytes` bytes in
        all; each `Link` must stay on the registry's origin (see `origins`)."""
        url = f"{self._base}/v2/{self._name}/tags/list?n={TAGS_PAGE_SIZE}"
        tags: list[str] = []
        seen_urls: set[str] = set()
        self._tag_bytes = 0
        pages = self.limits.max_tag_list_pages
        for _ in range(pages):
            seen_urls.add(url)
            body, link = await self.retrying(lambda u=url: self._get_tags_page(u))
            tags.extend(body)
            if not link:
                return list(dict.fromkeys(tags))
            url = self._follow_link(url, link, "tag list")
            if url in seen_urls:
                raise UpstreamProtocolError(
                    f"{self.host} tag list pagination loops at {url}",
                    host=self.host,
                    reason="UPSTREAM_TAG_LIST_LOOP",
                )
        raise UpstreamProtocolError(
            f"{self.host} tag list has more than {pages} pages; refusing to follow",
            host=self.host,
            reason="UPSTREAM_TAG_LIST_TOO_LONG",
        )

    async def head_manifest(self, reference: str) -> ManifestHead | None:
        """HEAD a tag or digest; None when upstream says it does not exist."""
        url = f"{self._base}/v2/{self._name}/manifests/{quote(reference, safe=':')}"

        async def attempt() -> ManifestHead | None:
            async with self._send("HEAD", url, "manifest_head", {"Accept": ACCEPT}) as resp:
                if resp.status == 404:
                    return None
                await self._raise_for_status(resp, f"manifest {reference}")
                header = resp.headers.get("Docker-Content-Digest", "")
                return ManifestHead(
                    digest=Digest.parse(header) if Digest.is_valid(header) else None,
                    media_type=resp.headers.get("Content-Type", ""),
                    size=resp.content_length,
                )

        return await self.retrying(attempt)

    async def get_manifest(self, reference: str, expected: Digest | None = None) -> Manifest | None:
        """GET and parse a manifest, verifying its digest; None when it does not exist."""
        url = f"{self._base}/v2/{self._name}/manifests/{quote(reference, safe=':')}"

        async def attempt() -> Manifest | None:
            async with self._send("GET", url, "manifest_get", {"Accept": ACCEPT}) as resp:
                if resp.status == 404:
                    return None
                await self._raise_for_status(resp, f"manifest {reference}")
                data = await read_capped(resp, MAX_MANIFEST_BYTES, self.host, "manifest")
                content_type = resp.headers.get("Content-Type", "")
                announced = resp.headers.get("Docker-Content-Digest", "")
            actual = Digest.of_bytes(data)
            want = expected or (Digest.parse(reference) if Digest.is_valid(reference) else None)
            if want is not None and Digest.of_bytes(data, want.algorithm) != want:
                raise DigestMismatch(
                    f"manifest {reference} from {self.host} hashes to {actual}, not {want}",
                    host=self.host,
                    digest=str(want),
                    receivedDigest=str(actual),
                )
            if (
                Digest.is_valid(announced)
                and announced.startswith("sha256:")
                and announced != str(actual)
            ):
                raise DigestMismatch(
                    f"manifest {reference} from {self.host}: Docker-Content-Digest {announced} "
                    f"disagrees with the content ({actual})",
                    host=self.host,
                    digest=announced,
                    receivedDigest=str(actual),
                )
            try:
                if len(data) > OFF_LOOP_PARSE_BYTES:
                    return await asyncio.to_thread(parse_manifest, data, content_type, want)
                return parse_manifest(data, content_type, want)
            except ManifestError as exc:
                raise UpstreamProtocolError(
                    f"manifest {reference} from {self.host} is rejected: {exc}",
                    host=self.host,
                    reason="UPSTREAM_MANIFEST_INVALID",
                    reference=reference,
                ) from exc

        return await self.retrying(attempt)

    async def get_referrers(self, digest: Digest) -> list[Descriptor] | None:
        """Referrers of `digest` by the OCI 1.1 API; None when the registry lacks the API."""
        url: str | None = f"{self._base}/v2/{self._name}/referrers/{digest}"
        found: list[Descriptor] = []
        pages = 0
        while url is not None and pages < MAX_REFERRER_PAGES:
            pages += 1

            async def attempt(u: str = url) -> tuple[bytes, str | None] | None:
                headers = {"Accept": "application/vnd.oci.image.index.v1+json"}
                async with self._send("GET", u, "referrers", headers) as resp:
                    if resp.status in (404, 405):
                        return None
                    await self._raise_for_status(resp, f"referrers of {digest}")
                    body = await read_capped(resp, MAX_MANIFEST_BYTES, self.host, "referrers")
                    return body, _next_link(resp.headers.getall("Link", []))

            page = await self.retrying(attempt)
            if page is None:
                return None if pages == 1 else found
            try:
                index = parse_manifest(page[0], "application/vnd.oci.image.index.v1+json")
            except ManifestError as exc:
                raise UpstreamProtocolError(
                    f"referrers of {digest} from {self.host} are invalid: {exc}", host=self.host
                ) from exc
            found.extend(index.children)
            url = self._follow_link(url, page[1], "referrers") if page[1] else None
        return found

    async def get_atomic_signatures(self, digest: Digest) -> list[tuple[str, bytes]] | None:
        """Signatures from the docker extension API; None when the registry lacks it."""
        url = f"{self._base}/extensions/v2/{self._name}/signatures/{digest}"

        async def attempt() -> list[tuple[str, bytes]] | None:
            async with self._send("GET", url, "signatures", {"Accept": "application/json"}) as resp:
                if resp.status in (404, 405):
                    return None
                await self._raise_for_status(resp, f"signatures of {digest}")
                body = await read_capped(resp, MAX_MANIFEST_BYTES, self.host, "signatures")
            try:
                entries = strictjson.loads(body, spec_keys=("signatures",)).get("signatures")
                entries = entries or []
                return [
                    (str(e.get("name", "")), base64.b64decode(e["content"], validate=True))
                    for e in entries
                    if e.get("type", "atomic") == "atomic"
                ]
            except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
                raise UpstreamProtocolError(
                    f"signatures of {digest} from {self.host} are invalid", host=self.host
                ) from exc

        return await self.retrying(attempt)

    async def get_lookaside_signatures(self, sigstore: str, digest: Digest) -> list[bytes]:
        """`<sigstore>/<name>@<alg>=<hex>/signature-N` for N = 1, 2, ... until a 404."""
        found: list[bytes] = []
        base = f"{sigstore.rstrip('/')}/{self._name}@{digest.algorithm}={digest.hex}"
        for number in range(1, MAX_LOOKASIDE_SIGNATURES + 1):
            url = f"{base}/signature-{number}"

            async def attempt(u: str = url, n: int = number) -> bytes | None:
                async with self._send("GET", u, "sigstore", {}, credentials=False) as resp:
                    if resp.status == 404:
                        return None
                    await self._raise_for_status(resp, f"lookaside signature {n} of {digest}")
                    return await read_capped(resp, MAX_MANIFEST_BYTES, self.host, "signature")

            data = await self.retrying(attempt)
            if data is None:
                break
            found.append(data)
        return found

    @contextlib.asynccontextmanager
    async def blob_stream(self, blob: Descriptor) -> AsyncIterator[AsyncIterator[bytes]]:
        """One GET of a blob, its body as chunks (no retries: the fetcher retries the whole
        download through `retrying`). Body errors become `UpstreamUnavailable`."""
        foreign = blob.is_foreign and bool(blob.urls)
        url = blob.urls[0] if foreign else f"{self._base}/v2/{self._name}/blobs/{blob.digest}"
        async with self._send("GET", url, "blob_get", {}, credentials=not foreign) as resp:
            await self._raise_for_status(resp, f"blob {blob.digest}")
            try:
                yield resp.content.iter_chunked(BLOB_CHUNK)
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise _body_error(self.host, exc) from exc

    # -- plumbing ----------------------------------------------------------------------

    async def _get_tags_page(self, url: str) -> tuple[list[str], str | None]:
        async with self._send("GET", url, "tag_list", {"Accept": "application/json"}) as resp:
            if resp.status == 404:
                raise UpstreamRejected(
                    f"repository {self._name} not found on {self.host}",
                    host=self.host,
                    status=404,
                    reason="UPSTREAM_NAME_UNKNOWN",
                    upstreamName=self._name,
                )
            await self._raise_for_status(resp, "tag list")
            left = self.limits.max_tag_list_bytes - self._tag_bytes
            body = await read_capped(resp, min(MAX_TAG_PAGE_BYTES, left), self.host, "tag list")
            self._tag_bytes += len(body)
            link = _next_link(resp.headers.getall("Link", []))
        if len(body) > OFF_LOOP_PARSE_BYTES:
            # 100k tags are ~2 MB of JSON: parsed and checked off the event loop.
            return await asyncio.to_thread(parse_tag_list, body, self.host), link
        return parse_tag_list(body, self.host), link

    def _follow_link(self, current: str, link: str, what: str) -> str:
        """The absolute URL of a `Link` target, if it keeps the registry's origin (scheme,
        host, port) or names an allow-listed host; an upstream must not send us elsewhere."""
        target = _join(current, link, self.host)
        origin = Origin.of(target)
        allowed = {normal_host(h) for h in self._remote.token_realm_allowlist}
        if origin != self._origin and not (
            origin.host in allowed and origin.scheme in ("https", self._origin.scheme)
        ):
            log.warning("%s: %s Link to %s refused (not its origin)", self.host, what, target)
            raise UpstreamProtocolError(
                f"{self.host} {what} pagination leads to another origin; refused",
                host=self.host,
                reason="UPSTREAM_LINK_REFUSED",
            )
        return target

    async def retrying(self, attempt: Callable[[], Awaitable[T]]) -> T:
        tries = self._remote.max_retries + 1
        for number in range(1, tries + 1):
            try:
                return await attempt()
            except UpstreamError as exc:
                if not _is_retryable(exc) or number == tries:
                    raise
                assert isinstance(exc, UpstreamUnavailable)
                why = f"http_{exc.status}" if exc.status else exc.reason.lower()
                metrics.UPSTREAM_RETRIES.labels(self.host, why).inc()
                delay = min(BACKOFF_MAX, self._backoff_base * 2 ** (number - 1))
                delay = random.uniform(delay / 2, delay)  # jitter: syncs must not retry in step
                if exc.retry_after is not None:
                    self._hosts.back_off(self.host, exc.retry_after)
                    delay = max(delay, min(exc.retry_after, BACKOFF_MAX * 10))
                log.info("retrying %s after %.2fs: %s", self.host, delay, exc.message)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    def _send(
        self, method: str, url: str, kind: str, headers: dict[str, str], *, credentials: bool = True
    ) -> _Exchange:
        return _Exchange(self, method, url, kind, headers, credentials)

    async def _raise_for_status(self, resp: aiohttp.ClientResponse, what: str) -> None:
        if 200 <= resp.status < 300:
            return
        body = b""
        try:
            body = await read_capped(resp, MAX_ERROR_BYTES, self.host, "error body")
        except UpstreamError:
            pass
        detail = body[:200].decode("utf-8", "replace").strip()
        status = resp.status
        if status in (401, 403):
            raise UpstreamAuthError(
                f"{self.host} denied access to {what} of {self._name} (HTTP {status})",
                host=self.host,
                httpStatus=status,
            )
        if status in (408, 429) or status >= 500:
            raise UpstreamUnavailable(
                f"{self.host} answered HTTP {status} for {what}",
                host=self.host,
                status=status,
                retry_after=parse_retry_after(resp.headers.get("Retry-After")),
            )
        raise UpstreamRejected(
            f"{self.host} answered HTTP {status} for {what}: {detail}",
            host=self.host,
            status=status,
        )


def _join(base: str, reference: str, host: str) -> str:
    """`reference` (a Location or Link target) made absolute; refused if it is no URL."""
    try:
        target = urljoin(base, reference)
        urlsplit(target).port  # noqa: B018 - validates the port
    except ValueError as exc:
        raise UpstreamProtocolError(
            f"{host} sent an unusable URL {reference[:100]!r}",
            host=host,
            reason="UPSTREAM_URL_INVALID",
        ) from exc
    return target


def parse_tag_list(body: bytes, host: str) -> list[str]:
    """The `tags` of a tag-list page (strict JSON: `{"name": ..., "tags": [...]}`)."""
    try:
        tags = strictjson.loads(body, spec_keys=("name", "tags")).get("tags") or []
    except (ValueError, AttributeError) as exc:
        raise UpstreamProtocolError(
            f"{host} sent an invalid tag list: {exc}",
            host=host,
            reason="UPSTREAM_TAG_LIST_INVALID",
        ) from exc
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise UpstreamProtocolError(
            f"{host} sent an invalid tag list", host=host, reason="UPSTREAM_TAG_LIST_INVALID"
        )
    return tags


def _private_refused(host: str, url: str) -> UpstreamProtocolError:
    target = urlsplit(url).hostname or url
    log.warning("%s: request to %s refused: a private address", host, url)
    return UpstreamProtocolError(
        f"{host} led to the private address {target}; refused (see allow_private_upstreams)",
        host=host,
        reason="UPSTREAM_PRIVATE_ADDRESS_REFUSED",
        target=target,
    )


def _body_error(host: str, exc: BaseException) -> UpstreamUnavailable:
    return UpstreamUnavailable(
        f"{host} broke off a response: {exc.__class__.__name__}: {exc}", host=host
    )


def _next_link(values: list[str]) -> str | None:
    for value in values:
        for part in value.split(","):
            target, _, params = part.partition(";")
            if 'rel="next"' in params.replace(" ", "") or "rel=next" in params.replace(" ", ""):
                return target.strip().strip("<>")
    return None


class _Exchange:
    """One request with auth, redirects, throttling and error mapping; yields the response."""

    def __init__(
        self,
        upstream: Upstream,
        method: str,
        url: str,
        kind: str,
        headers: dict[str, str],
        credentials: bool,
    ) -> None:
        self._up = upstream
        self._method = method
        self._url = url
        self._kind = kind
        self._headers = headers
        self._credentials = credentials
        self._response: aiohttp.ClientResponse | None = None
        self._slot_held = False

    async def __aenter__(self) -> aiohttp.ClientResponse:
        up = self._up
        await up._slots.acquire()
        self._slot_held = True
        try:
            self._response = await self._follow()
        except BaseException:
            self._release()
            raise
        return self._response

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        if self._response is not None:
            self._response.release()
        self._release()
        if isinstance(exc, aiohttp.ClientError | TimeoutError):
            # The body broke off mid-read (reset, truncated chunk): transient, retried.
            raise _body_error(self._up.host, exc) from exc

    def _release(self) -> None:
        if self._slot_held:
            self._slot_held = False
            self._up._slots.release()

    async def _follow(self) -> aiohttp.ClientResponse:
        up = self._up
        url = self._url
        answered_challenge = False
        for _ in range(MAX_REDIRECTS + 1):
            # Checked after taking a slot and before every hop, so requests that queued
            # before a 429 still honour the host's Retry-After.
            await up._hosts.wait_ready(up.host)
            headers = dict(self._headers)
            if up._auth.may_receive_credentials(url):
                # The remote's extra headers (API keys...) are for the registry alone.
                headers = {**dict(up._remote.headers), **headers}
            send_auth = self._credentials and up._auth.may_receive_credentials(url)
            if send_auth and (auth := up._auth.header_for(up._scope)):
                headers["Authorization"] = auth
            await up._rate.acquire()
            up.requests[self._kind] = up.requests.get(self._kind, 0) + 1
            metrics.UPSTREAM_REQUESTS.labels(up.host, self._kind).inc()
            proxy = up._proxy.kwargs(url)
            headers.update(proxy.pop("extra_headers", {}))  # type: ignore[arg-type]
            if self._kind not in STREAMING_KINDS and not up._remote.total_timeout:
                # Metadata is small: a finite deadline even when the remote sets none.
                proxy["timeout"] = aiohttp.ClientTimeout(
                    total=up.limits.metadata_timeout,
                    sock_connect=up._remote.connect_timeout or None,
                    sock_read=up._remote.sock_read_timeout or None,
                )
            try:
                up.policy.check_url(url)
                resp = await up._session.request(
                    self._method, url, headers=headers, allow_redirects=False, **proxy
                )
            except PrivateAddressRefused as exc:
                raise _private_refused(up.host, url) from exc
            except (aiohttp.ClientError, TimeoutError) as exc:
                if isinstance(getattr(exc, "os_error", None), PrivateAddressRefused):
                    raise _private_refused(up.host, url) from exc
                raise UpstreamUnavailable(
                    f"{urlsplit(url).netloc} unreachable: {exc.__class__.__name__}: {exc}",
                    host=up.host,
                ) from exc
            if resp.status == 401 and send_auth and not answered_challenge:
                challenge = resp.headers.get("WWW-Authenticate")
                resp.release()
                await up._auth.answer(challenge, up._scope, up._proxy, headers.get("Authorization"))
                answered_challenge = True
                continue
            if resp.status in (301, 302, 303, 307, 308) and "Location" in resp.headers:
                resp.release()
                target = _join(url, resp.headers["Location"], up.host)
                if urlsplit(url).scheme == "https" and urlsplit(target).scheme != "https":
                    raise UpstreamProtocolError(
                        f"{up.host} redirected https to http ({target}); refused",
                        host=up.host,
                        reason="UPSTREAM_REDIRECT_REFUSED",
                    )
                url = target
                continue
            if resp.status == 401 and answered_challenge:
                resp.release()
                raise UpstreamAuthError(
                    f"{up.host} refused the credentials of {up._remote.name}",
                    host=up.host,
                    httpStatus=401,
                )
            return resp
        raise UpstreamProtocolError(
            f"{up.host} redirected more than {MAX_REDIRECTS} times", host=up.host
        )
