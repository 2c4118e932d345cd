"""Where the gateway may send a request (SSRF): the operator's allow-list and the address rule.

Pure: parsing the allow-list, classifying an address and checking a URL's shape do no I/O; the
one lookup (host name → addresses) is a resolver the caller passes in, so the check and the
connection use the same answer (no DNS rebinding window between them).

The rule (docs/security.md#outbound-calls-ssrf): a URL is http or https; every address its host
resolves to is public, unless the allow-list names the host or holds a CIDR containing the
address. A host name in the allow-list also lifts the peer-origin rule for `response_url`
(`permits_any_origin`); a CIDR only lifts the address rule."""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# host, port → the addresses to connect to, in the order to try them.
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

SETTING = "CHARGEGATE_OUTBOUND_ALLOW"
DEFAULT_PORTS = {"http": 80, "https": 443}


class OutboundRefused(Exception):
    """A URL the gateway will not call; the message names the host and how to allow it."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(reason)
        self.host = host


def normal_host(host: str) -> str:
    """Host names compare case-insensitively and without a trailing dot; IPv6 without []."""
    return host.strip().strip("[]").rstrip(".").lower()


@lru_cache(maxsize=4096)  # the command path asks for the same few hosts again and again
def as_address(host: str) -> IPAddress | None:
    """The address a host literally is (`10.0.0.1`, `[::1]`), or None for a name."""
    try:
        return ipaddress.ip_address(normal_host(host).split("%", 1)[0])
    except ValueError:
        return None


def _embedded(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 one carries (::ffff:a.b.c.d, 6to4, Teredo), or itself: the
    network stack reaches the IPv4 host, so that is the one to classify."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address.teredo is not None:
            return address.teredo[1]
    return address


def is_public(address: IPAddress) -> bool:
    """False for loopback, link-local (169.254.0.0/16: cloud metadata), private (RFC 1918,
    fc00::/7), shared (100.64.0.0/10), unspecified, multicast, reserved and documentation
    addresses: `is_global` covers all but multicast."""
    inner = _embedded(address)
    return inner.is_global and not inner.is_multicast


@dataclass(frozen=True, slots=True)
class OutboundPolicy:
    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, text: str) -> OutboundPolicy:
        """`127.0.0.0/8, localhost, ::1, peer.example.com`: CIDRs and single addresses become
        networks, anything else a host name. Raises ValueError for an entry that is neither."""
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for raw in text.split(","):
            entry = normal_host(raw)
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            labels = entry.split(".")
            if "/" in entry or not all(
                label and len(label) <= 63 and label.replace("-", "").replace("_", "").isalnum()
                for label in labels
            ):
                raise ValueError(
                    f"{SETTING}: {raw.strip()!r} is neither a host name nor an address or CIDR"
                )
            hosts.add(entry)
        return cls(frozenset(hosts), tuple(networks))

    def names(self, host: str) -> bool:
        """The allow-list names this host: as a host name, or (a literal address) in a CIDR."""
        address = as_address(host)
        if address is None:
            return normal_host(host) in self.hosts
        return self._in_networks(address)

    def permits_any_origin(self, host: str) -> bool:
        """A host name the operator listed: any peer may use it, on any port."""
        return as_address(host) is None and normal_host(host) in self.hosts

    def permits(self, host: str, address: IPAddress) -> bool:
        """May we connect to `address`, which `host` resolved to?"""
        return is_public(address) or normal_host(host) in self.hosts or self._in_networks(address)

    def _in_networks(self, address: IPAddress) -> bool:
        candidates = {address, _embedded(address)}
        return any(a in net for a in candidates for net in self.networks)

    def refusal(self, host: str, address: IPAddress | None = None) -> OutboundRefused:
        shown = (
            host if address is None or str(address) == normal_host(host) else f"{host} ({address})"
        )
        return OutboundRefused(
            host,
            f"calls to {shown} are not allowed: it is a loopback, private, link-local or "
            f"reserved address; the operator can allow it by adding {normal_host(host)!r} "
            f"or a CIDR containing its address to {SETTING}",
        )

    async def addresses(self, host: str, port: int, resolve: Resolver) -> list[str]:
        """The addresses to connect to for `host`, each checked; raises OutboundRefused if any
        is not permitted (a name that resolves to a public and a private address could be
        steered to the private one)."""
        literal = as_address(host)
        found = (
            [str(literal)] if literal is not None else list(await resolve(normal_host(host), port))
        )
        if not found:
            raise OutboundRefused(host, f"{host} does not resolve to any address")
        for text in found:
            address = ipaddress.ip_address(text.split("%", 1)[0])
            if not self.permits(host, address):
                raise self.refusal(host, address)
        return found


@dataclass(frozen=True, slots=True)
class Origin:
    scheme: str
    host: str
    port: int


def origin_of(url: str) -> Origin:
    """The scheme, host and port a URL is sent to; raises OutboundRefused for anything but
    http(s) with a host."""
    try:
        parts = urlsplit(url)
        port = parts.port or DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError as exc:
        raise OutboundRefused(url, f"{url!r} is not a URL we can call: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname or port is None:
        raise OutboundRefused(url, f"{url!r} is not an http or https URL with a host")
    return Origin(scheme, normal_host(parts.hostname), port)


@lru_cache(maxsize=4096)
def registered_origins(registered: tuple[str, ...]) -> frozenset[tuple[str, int]]:
    """Host and port of each usable URL; kept, as a peer's URLs change only at registration
    and every command asks (the command path is measured: docs/performance.md)."""
    found: set[tuple[str, int]] = set()
    for known in registered:
        try:
            origin = origin_of(known)
        except OutboundRefused:
            continue
        found.add((origin.host, origin.port))
    return frozenset(found)


def check_peer_origin(
    policy: OutboundPolicy, url: str, registered: Sequence[str], what: str = "response_url"
) -> None:
    """A URL a peer gives us to call back (`response_url`) must be on one of its registered
    origins (host and port of its versions and endpoint URLs), unless the allow-list names the
    host; and a literal address must pass the address rule. No resolution: the host names of
    registered URLs were checked at registration, and the connection checks again."""
    origin = origin_of(url)
    literal = as_address(origin.host)
    if literal is not None and not policy.permits(origin.host, literal):
        raise policy.refusal(origin.host, literal)
    if policy.permits_any_origin(origin.host):
        return
    mine = registered_origins(tuple(registered))
    if (origin.host, origin.port) not in mine:
        hosts = ", ".join(sorted(f"{h}:{p}" for h, p in mine)) or "none"
        raise OutboundRefused(
            origin.host,
            f"{what} host {origin.host}:{origin.port} is not one of your registered "
            f"endpoints' hosts ({hosts}); the CPO's operator can allow it by adding "
            f"{origin.host!r} to {SETTING}",
        )
