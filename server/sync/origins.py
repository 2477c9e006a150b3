"""Where an upstream may lead the server: same origin, registrable domains, private networks.

An upstream is not trusted to send the server elsewhere:

- **Origins.** `Link` URLs (tag and referrer pagination) must keep the registry's scheme, host
  and port (or name a host of the remote's `token_realm_allowlist`); `Authorization` and the
  remote's extra headers go only to the registry's own scheme+host+port (an `http://` page of
  the same host gets none).
- **Token realms** must be the registry host, a host of the same registrable domain (the
  Public Suffix List from the `publicsuffixlist` package, bundled, never fetched at run time;
  plus `MULTI_TENANT_SUFFIXES`), or allow-listed. Hosts are compared lower-cased without a
  trailing dot.
- **Private networks.** A remote whose URL names a public host may not lead the server to a
  private address (loopback, RFC 1918, link-local, ...: `Limits.private_networks`) by a
  redirect, a token realm, a foreign-layer URL or DNS: literal addresses are checked here
  (`NetworkPolicy.check_url`) and names when they resolve (`GuardedResolver`, so a name that
  rebinds to 127.0.0.1 is refused too). A remote whose own URL is a private address or
  `localhost` was pointed there by an administrator and may use private addresses;
  `Limits.allow_private_upstreams` lifts the rule for every remote.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from publicsuffixlist import PublicSuffixList

from server.config import Limits

# Registry services whose tenants are sibling host names under one domain the Public Suffix
# List does not list (each tenant's token realm is its own host): one tenant must not be
# trusted as another's realm.
MULTI_TENANT_SUFFIXES = ("azurecr.io", "azurecr.cn", "azurecr.us", "azurecr.de")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class PrivateAddressRefused(OSError):
    """A public upstream led to a private address (raised by the resolver and checks)."""


def normal_host(host: str) -> str:
    """Lower-case, without the trailing dot of a fully qualified name."""
    return host.lower().rstrip(".")


@dataclass(frozen=True, slots=True)
class Origin:
    """scheme://host:port, with the scheme's default port filled in."""

    scheme: str
    host: str
    port: int

    @classmethod
    def of(cls, url: str) -> Origin:
        """The origin of `url`; an unparsable URL (`http://[`) has one that matches nothing."""
        try:
            parts = urlsplit(url)
            hostname = parts.hostname or ""
        except ValueError:
            return cls("", "", -1)
        scheme = parts.scheme.lower()
        try:
            port = parts.port
        except ValueError:
            port = -1
        if port is None:
            port = 443 if scheme == "https" else 80
        return cls(scheme, normal_host(hostname), port)


@functools.cache
def _psl() -> PublicSuffixList:
    return PublicSuffixList()  # the package's bundled list; no network


def registrable_domain(host: str) -> str:
    """The registrable domain (eTLD+1) of `host`; IP literals and bare suffixes stay whole."""
    host = normal_host(host)
    if _ip(host) is not None:
        return host
    for suffix in MULTI_TENANT_SUFFIXES:
        if host.endswith("." + suffix):
            labels = host[: -len(suffix) - 1].split(".")
            return f"{labels[-1]}.{suffix}"
    return _psl().privatesuffix(host) or host


def _ip(host: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True, slots=True)
class NetworkPolicy:
    """Whether requests of one remote may reach private addresses."""

    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    allow_private: bool

    @classmethod
    def for_remote(cls, remote_url: str, limits: Limits) -> NetworkPolicy:
        networks = tuple(ipaddress.ip_network(n, strict=False) for n in limits.private_networks)
        host = Origin.of(remote_url).host
        address = _ip(host)
        own_private = host == "localhost" or host.endswith(".localhost")
        if address is not None:
            own_private = any(address in n for n in networks if n.version == address.version)
        return cls(networks, limits.allow_private_upstreams or own_private)

    def is_private(self, address: IPAddress) -> bool:
        return any(address in n for n in self.networks if n.version == address.version)

    def refuses_host(self, host: str) -> bool:
        """A literal address (or localhost) this remote may not reach."""
        if self.allow_private:
            return False
        host = normal_host(host)
        if host == "localhost" or host.endswith(".localhost"):
            return True
        address = _ip(host)
        return address is not None and self.is_private(address)

    def check_url(self, url: str) -> None:
        host = Origin.of(url).host
        if self.refuses_host(host):
            raise PrivateAddressRefused(f"{host} is a private address")


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver, minus the addresses a `NetworkPolicy` refuses."""

    def __init__(self, policy: NetworkPolicy) -> None:
        self._policy = policy
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if self._policy.allow_private:
            return results
        kept = [r for r in results if not self._policy.is_private(_ip(r["host"]) or _ANY)]
        if not kept:
            raise PrivateAddressRefused(f"{host} resolves only to private addresses")
        return kept

    async def close(self) -> None:
        await self._inner.close()


_ANY = ipaddress.ip_address("0.0.0.0")  # an unparsable result counts as private
