"""The outbound policy on its own (domain/outbound_policy.py): which addresses are refused, how
the allow-list reads, and the peer-origin rule for response_url. No sockets, no DNS: the
resolver is a function the test passes in."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from chargegate.domain.outbound_policy import (
    SETTING,
    OutboundPolicy,
    OutboundRefused,
    check_peer_origin,
    is_public,
    origin_of,
)
from chargegate.settings import Settings

REFUSED = [
    "127.0.0.1",
    "127.255.255.254",
    "0.0.0.0",
    "10.1.2.3",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "100.64.0.1",  # carrier-grade NAT
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "192.0.2.10",
    "::",
    "::1",
    "fc00::1",
    "fd12:3456::1",
    "fe80::1",
    "ff02::1",
    "::ffff:127.0.0.1",  # IPv4-mapped: the socket reaches 127.0.0.1
    "::ffff:169.254.169.254",
    "2002:a9fe:a9fe::1",  # 6to4 carrying 169.254.169.254
]
PUBLIC = ["8.8.8.8", "1.1.1.1", "93.184.215.14", "2606:4700:4700::1111", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("address", REFUSED)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


PRIVATE_V4 = st.sampled_from(
    ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "169.254.0.0/16"]
).flatmap(
    lambda net: st.integers(0, ipaddress.ip_network(net).num_addresses - 1).map(
        lambda i: ipaddress.ip_network(net)[i]
    )
)


@given(PRIVATE_V4)
def test_every_private_v4_address_is_refused_plain_and_mapped(
    address: ipaddress.IPv4Address,
) -> None:
    mapped = ipaddress.IPv6Address(f"::ffff:{address}")
    assert not is_public(address) and not is_public(mapped)
    assert not OutboundPolicy().permits("peer.example.com", address)


@given(PRIVATE_V4)
def test_a_cidr_in_the_allow_list_permits_every_address_in_it(
    address: ipaddress.IPv4Address,
) -> None:
    policy = OutboundPolicy.parse("10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,127.0.0.0/8")
    inside = any(address in net for net in policy.networks)
    assert policy.permits("any.name", address) is inside


def test_allow_list_parsing() -> None:
    policy = OutboundPolicy.parse(" 127.0.0.0/8, LocalHost., ::1 ,,peer-1.example.com,10.0.0.7")
    assert policy.hosts == {"localhost", "peer-1.example.com"}
    assert [str(n) for n in policy.networks] == ["127.0.0.0/8", "::1/128", "10.0.0.7/32"]
    assert OutboundPolicy.parse("") == OutboundPolicy()


@pytest.mark.parametrize("entry", ["http://x", "a b", "10.0.0.0/33", "host/path", "-..x"])
def test_an_allow_list_entry_that_is_neither_host_nor_cidr_fails_at_start(entry: str) -> None:
    with pytest.raises(ValueError, match=SETTING):
        OutboundPolicy.parse(entry)
    with pytest.raises(ValidationError):
        Settings(outbound_allow=entry)


def test_the_default_allows_nothing_private() -> None:
    assert Settings().outbound_allow == ""
    assert Settings().outbound_policy == OutboundPolicy()


class Resolver:
    """Answers from a table and counts the lookups."""

    def __init__(self, table: dict[str, Sequence[str]]) -> None:
        self.table = table
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.asked.append(host)
        return self.table.get(host, [])


async def test_a_name_resolving_to_any_refused_address_is_refused() -> None:
    resolve = Resolver({"mixed.example.com": ["93.184.215.14", "10.0.0.5"]})
    with pytest.raises(OutboundRefused, match=r"mixed\.example\.com \(10\.0\.0\.5\).*" + SETTING):
        await OutboundPolicy().addresses("mixed.example.com", 443, resolve)


async def test_a_public_name_gives_its_checked_addresses_in_order() -> None:
    resolve = Resolver({"peer.example.com": ["93.184.215.14", "2606:4700::1"]})
    found = await OutboundPolicy().addresses("Peer.Example.com.", 443, resolve)
    assert found == ["93.184.215.14", "2606:4700::1"] and resolve.asked == ["peer.example.com"]


async def test_an_allow_listed_name_may_resolve_to_a_private_address() -> None:
    resolve = Resolver({"localhost": ["127.0.0.1", "::1"], "other": ["127.0.0.1"]})
    policy = OutboundPolicy.parse("localhost")
    assert await policy.addresses("localhost", 80, resolve) == ["127.0.0.1", "::1"]
    with pytest.raises(OutboundRefused):
        await policy.addresses("other", 80, resolve)


async def test_a_literal_address_is_not_resolved() -> None:
    resolve = Resolver({})
    with pytest.raises(OutboundRefused, match=r"169\.254\.169\.254"):
        await OutboundPolicy().addresses("169.254.169.254", 80, resolve)
    assert await OutboundPolicy.parse("127.0.0.0/8").addresses("127.0.0.9", 80, resolve) == [
        "127.0.0.9"
    ]
    assert resolve.asked == []


async def test_a_name_with_no_address_is_refused() -> None:
    with pytest.raises(OutboundRefused, match="does not resolve"):
        await OutboundPolicy().addresses("nowhere.example.com", 80, Resolver({}))


@pytest.mark.parametrize(
    "url", ["ftp://peer.example.com/x", "file:///etc/passwd", "http:///nohost", "gopher://h/", "x"]
)
def test_only_http_and_https_urls_with_a_host(url: str) -> None:
    with pytest.raises(OutboundRefused, match="http or https"):
        origin_of(url)


def test_origins_with_default_ports() -> None:
    assert (origin_of("https://Peer.example.com/a").host, origin_of("https://p/").port) == (
        "peer.example.com",
        443,
    )
    assert origin_of("http://[::1]:8080/x").host == "::1"


REGISTERED = ["https://emsp.example.com/ocpi/versions", "https://api.emsp.example.com:8443/c"]


@pytest.mark.parametrize(
    "url",
    [
        "https://emsp.example.com/ocpi/emsp/2.2.1/commands/START_SESSION/1",
        "http://emsp.example.com:443/r",  # the same host and port
        "https://API.emsp.example.com:8443/results/2",
    ],
)
def test_a_response_url_on_a_registered_origin_passes(url: str) -> None:
    check_peer_origin(OutboundPolicy(), url, REGISTERED)


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("https://emsp.example.com:8080/r", "emsp.example.com:8080"),  # another port
        ("https://elsewhere.example.com/r", "elsewhere.example.com:443"),  # another host
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),
        ("http://[::ffff:127.0.0.1]:8080/", "::ffff:127.0.0.1"),
    ],
)
def test_a_response_url_elsewhere_is_refused_naming_the_host(url: str, named: str) -> None:
    with pytest.raises(OutboundRefused) as refused:
        check_peer_origin(OutboundPolicy(), url, REGISTERED)
    assert named in str(refused.value) and SETTING in str(refused.value)


def test_an_allow_listed_host_name_lifts_the_origin_rule_a_cidr_does_not() -> None:
    registered = ["http://127.0.0.1:9000/ocpi/versions"]
    by_name = OutboundPolicy.parse("callbacks.example.com,127.0.0.0/8")
    check_peer_origin(by_name, "https://callbacks.example.com:9443/r/1", registered)
    check_peer_origin(by_name, "http://127.0.0.1:9000/r/1", registered)
    with pytest.raises(OutboundRefused, match=r"127\.0\.0\.1:5432"):
        check_peer_origin(by_name, "http://127.0.0.1:5432/", registered)


def test_no_registered_urls_means_no_response_url_passes() -> None:
    with pytest.raises(OutboundRefused, match=r"\(none\)"):
        check_peer_origin(OutboundPolicy(), "https://emsp.example.com/r", [])
