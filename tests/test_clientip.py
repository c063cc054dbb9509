"""Client address resolution: trusted proxies only, right to left, garbage never believed."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backend_guard.clientip import ClientIP, address_bucket, normalize_address
from backend_guard.exceptions import ConfigurationError
from backend_guard.request import view_from_environ, view_from_scope

PROXY = "10.0.0.5"
cip = ClientIP(trusted_proxies=["10.0.0.0/8", "::1"])


def test_no_trusted_proxies_ignores_headers() -> None:
    plain = ClientIP()
    assert plain.resolve("203.0.113.9", {"x-forwarded-for": "1.2.3.4"}).address == "203.0.113.9"


def test_untrusted_peer_headers_are_never_believed() -> None:
    resolved = cip.resolve("198.51.100.1", {"x-forwarded-for": "1.2.3.4", "x-forwarded-proto": "https"})
    assert resolved.address == "198.51.100.1"
    assert resolved.scheme == "http"
    assert not resolved.proxied


def test_walks_right_to_left_and_stops_at_first_untrusted_hop() -> None:
    # The client forged "6.6.6.6"; our proxy 10.0.0.9 appended the real client 203.0.113.7.
    headers = {"x-forwarded-for": "6.6.6.6, 203.0.113.7, 10.0.0.9"}
    assert cip.resolve(PROXY, headers).address == "203.0.113.7"


def test_all_hops_trusted_gives_leftmost() -> None:
    assert cip.resolve(PROXY, {"x-forwarded-for": "10.1.1.1, 10.2.2.2"}).address == "10.1.1.1"


@pytest.mark.parametrize(
    "value",
    ["unknown", "_hidden", "garbage", "1.2.3.4.5", "[::1", "999.1.1.1", "", " , ,", "1.2.3.4:http", "fe80::1%eth0"],
)
def test_garbage_falls_back_to_the_proxy_that_reported_it(value: str) -> None:
    assert cip.resolve(PROXY, {"x-forwarded-for": value}).address == PROXY


def test_garbage_deeper_in_the_chain_stops_at_the_last_good_trusted_hop() -> None:
    assert cip.resolve(PROXY, {"x-forwarded-for": "1.1.1.1, _x, 10.0.0.7"}).address == "10.0.0.7"


def test_ports_brackets_and_ipv6_are_normalised() -> None:
    assert cip.resolve(PROXY, {"x-forwarded-for": "203.0.113.7:5555"}).address == "203.0.113.7"
    assert cip.resolve(PROXY, {"x-forwarded-for": "[2001:DB8::0:1]:80"}).address == "2001:db8::1"
    assert cip.resolve(PROXY, {"x-forwarded-for": "2001:db8:0:0::2"}).address == "2001:db8::2"
    assert cip.resolve(PROXY, {"x-forwarded-for": "::ffff:198.51.100.3"}).address == "198.51.100.3"


def test_rfc7239_forwarded() -> None:
    fwd = ClientIP(["10.0.0.0/8"], forwarded_header="forwarded", forwarded_fields=("for", "proto", "host"))
    headers = {"forwarded": 'for=6.6.6.6, for="[2001:db8::7]:4711";proto=https;host=api.example.com'}
    resolved = fwd.resolve(PROXY, headers)
    assert resolved.address == "2001:db8::7"
    assert resolved.scheme == "https"
    assert resolved.host == "api.example.com"
    assert fwd.resolve(PROXY, {"forwarded": "for=_hidden"}).address == PROXY
    # The element our proxy appended says https even though it hides the address: each value on its own.
    hidden = fwd.resolve(PROXY, {"forwarded": "for=unknown;proto=https"})
    assert (hidden.address, hidden.scheme) == (PROXY, "https")


def test_forwarded_proto_and_host_come_from_the_element_the_outermost_trusted_proxy_appended() -> None:
    fwd = ClientIP(["10.0.0.0/8"], forwarded_header="forwarded", forwarded_fields=("for", "proto", "host"))
    # The client wrote the first element; our edge proxy 10.0.0.9 appended the second; the peer the third.
    value = "for=6.6.6.6;proto=https;host=evil.example, for=203.0.113.7;proto=http;host=a.example, for=10.0.0.9"
    resolved = fwd.resolve(PROXY, {"forwarded": value}, scheme="http", host="internal")
    assert (resolved.address, resolved.scheme, resolved.host) == ("203.0.113.7", "http", "a.example")


def test_forwarded_header_any_is_refused_and_says_what_to_write_instead() -> None:
    with pytest.raises(ConfigurationError, match=r"forwarded_header.*'x-forwarded-for' or 'forwarded'"):
        ClientIP(["10.0.0.0/8"], forwarded_header="any")


def test_scheme_and_host_only_through_trusted_proxy() -> None:
    with_host = ClientIP(["10.0.0.0/8", "::1"], forwarded_fields=("for", "proto", "host"))
    headers = {"x-forwarded-for": "1.2.3.4", "x-forwarded-proto": "http, https", "x-forwarded-host": "a.example"}
    resolved = with_host.resolve(PROXY, headers, scheme="http", host="internal")
    assert resolved.scheme == "https"
    assert resolved.host == "a.example"
    bad = cip.resolve(PROXY, {"x-forwarded-for": "1.2.3.4", "x-forwarded-proto": "javascript"}, scheme="http")
    assert bad.scheme == "http"
    evil = {"x-forwarded-for": "1.2.3.4", "x-forwarded-host": "a.com/\r\nx"}
    assert with_host.resolve(PROXY, evil, host="h").host == "h"


def test_huge_header_is_not_read() -> None:
    assert cip.resolve(PROXY, {"x-forwarded-for": "1.2.3.4," * 5000}).address == PROXY


def test_bad_trusted_proxy_setting_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="not-a-network"):
        ClientIP(["not-a-network"])
    with pytest.raises(ConfigurationError):
        ClientIP([], forwarded_header="x-real-ip")


def test_unix_socket_peer() -> None:
    unix = ClientIP(["unix"])
    assert unix.resolve(None, {"x-forwarded-for": "1.2.3.4"}).address == "1.2.3.4"
    assert ClientIP(["10.0.0.0/8"]).resolve(None, {"x-forwarded-for": "1.2.3.4"}).address == ""


def test_from_scope_and_environ_with_repeated_headers() -> None:
    scope = {
        "type": "http",
        "client": (PROXY, 1234),
        "scheme": "http",
        "headers": [
            (b"x-forwarded-for", b"6.6.6.6"),
            (b"x-forwarded-for", b"203.0.113.7"),
            (b"x-forwarded-proto", b"https"),
            (b"host", b"svc"),
        ],
    }
    assert cip.from_scope(scope) == "203.0.113.7"
    view = view_from_scope(scope, cip)
    assert view.secure
    assert view.client == "203.0.113.7"
    environ = {"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": "6.6.6.6, 203.0.113.7", "wsgi.url_scheme": "http"}
    assert cip.from_environ(environ) == "203.0.113.7"
    assert view_from_environ(environ, cip).client == "203.0.113.7"
    assert ClientIP().from_environ(environ) == PROXY


def test_address_bucket() -> None:
    assert address_bucket("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert address_bucket("2001:db8:1:2:3:4:5:6", 128) == "2001:db8:1:2:3:4:5:6"
    assert address_bucket("198.51.100.7") == "198.51.100.7"
    assert normalize_address("nonsense") is None


ips = st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)).map(str)


@given(st.text(max_size=300))
def test_any_header_text_resolves_to_a_real_address(text: str) -> None:
    resolved = cip.resolve(PROXY, {"x-forwarded-for": text, "forwarded": text, "x-forwarded-proto": text})
    ipaddress.ip_address(resolved.address)
    fwd = ClientIP(["10.0.0.0/8"], forwarded_header="forwarded").resolve(PROXY, {"forwarded": text})
    ipaddress.ip_address(fwd.address)


@given(st.lists(ips, min_size=1, max_size=6), ips)
def test_result_is_the_rightmost_untrusted_hop(chain: list[str], peer: str) -> None:
    trusted = ClientIP(["10.0.0.0/8"])
    resolved = trusted.resolve(peer, {"x-forwarded-for": ", ".join(chain)})
    if not trusted.is_trusted(peer):
        assert resolved.address == ipaddress.ip_address(peer).compressed or resolved.address == normalize_address(peer)
        return
    expected = None
    for hop in reversed(chain):
        expected = normalize_address(hop)
        if not trusted.is_trusted(hop):
            break
    assert resolved.address == expected


@given(ips)
def test_untrusted_peer_is_always_the_answer(peer: str) -> None:
    trusted = ClientIP(["10.0.0.0/8"])
    if not trusted.is_trusted(peer):
        assert trusted.resolve(peer, {"x-forwarded-for": "1.2.3.4"}).address == normalize_address(peer)


def _parsed_by_ipaddress(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """What parse_ip answers by the standard library alone (its rule before the C library's shortcut)."""
    if not 0 < len(text) <= 45 or "%" in text:
        return None
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    return addr.ipv4_mapped if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped else addr


_octet = st.integers(0, 300).map(str) | st.sampled_from(
    ["00", "01", "007", "0x1", "1e1", " 1", "1 ", "+1", "-1", "١", ""]
)
_dotted = st.lists(_octet, min_size=1, max_size=6).map(".".join)


@given(_dotted | st.text(alphabet="0123456789.:abcdefABCDEF x\x00%[]", max_size=46) | st.text(max_size=20))
def test_an_address_is_read_as_the_standard_library_reads_it(text: str) -> None:
    # Canonical dotted-quad IPv4 (what peers and forwarding headers hold) is read by the C library, everything
    # else by ipaddress: both must give one answer, or a forged spelling could count in another bucket.
    from backend_guard.clientip._address import parse_ip

    assert parse_ip(text) == _parsed_by_ipaddress(text)
    assert type(parse_ip(text)) is type(_parsed_by_ipaddress(text))


def _bucket_by_ipaddress(address: str, ipv6_prefix: int) -> str:
    """What address_bucket answers by the standard library alone (its rule before the C library's shortcut)."""
    from backend_guard.clientip._address import strip_port

    addr = _parsed_by_ipaddress(strip_port(address))
    if isinstance(addr, ipaddress.IPv6Address) and ipv6_prefix < 128:
        return str(ipaddress.IPv6Network((addr, ipv6_prefix), strict=False))
    return address if addr is None else addr.compressed


_port = st.sampled_from(["", ":80", ":x", ":", ":65535"])


@given(
    st.tuples(_dotted | ips | st.text(alphabet="0123456789.:abcdefABCDEF x\x00%[]", max_size=46), _port).map("".join)
    | ips.map(lambda a: f"[{a}]:443")
    | st.text(max_size=20),
    st.sampled_from([48, 64, 128]),
)
def test_an_address_counts_in_the_bucket_the_standard_library_gives_it(address: str, ipv6_prefix: int) -> None:
    # A canonical dotted quad is its own bucket as written (no address object made): every spelling must still
    # land where ipaddress puts it, or one client could count in two buckets (or two clients in one).
    assert address_bucket(address, ipv6_prefix) == _bucket_by_ipaddress(address, ipv6_prefix)
    assert type(address_bucket(address, ipv6_prefix)) is str


def test_a_flood_of_distinct_peers_keeps_the_trust_answers_right_and_bounded() -> None:
    # Whether a peer is a trusted proxy is remembered per peer address (asked on every request); an app clients
    # reach directly sees each client as a peer, so the memory is bounded and its answers stay right.
    from backend_guard._cache import bounded_caches

    cip = ClientIP(["10.0.0.0/8", "2001:db8::/32"])
    headers = {"x-forwarded-for": "198.51.100.7"}
    assert cip.resolve("10.1.2.3", headers).address == "198.51.100.7"
    for i in range(6000):
        peer = f"203.0.{i // 256}.{i % 256}" if i % 2 else f"10.9.{i // 256}.{i % 256}"
        assert cip.is_trusted(peer) == (i % 2 == 0)
        assert cip.resolve(peer, headers).address == ("198.51.100.7" if i % 2 == 0 else peer)
    assert cip.is_trusted("10.1.2.3")
    assert cip.is_trusted("2001:db8::5")
    assert not cip.is_trusted("2001:db9::5")
    assert not cip.is_trusted("10.1.2.3 ")
    assert not cip.is_trusted("garbage")
    caches = [c for c in bounded_caches() if c.name == "clientip.trusted_peers"]
    assert any(len(c) == c.max_entries for c in caches)  # this resolver's, full after the flood
    for cache in caches:
        assert len(cache) <= cache.max_entries
        assert cache.nbytes <= cache.max_bytes


class _Spelled(str):
    """A str subclass whose str() is another address (a server or framework could hand one over as the peer)."""

    def __str__(self) -> str:
        return "10.0.0.1"


def test_a_str_subclass_peer_is_read_as_before_and_never_remembered_for_plain_text() -> None:
    # ipaddress reads a subclass through str(): the C library's shortcut and the per-peer memory take plain str
    # only, so such a peer answers as it always did and leaves nothing a plain peer of the same characters reads.
    from backend_guard.clientip._address import parse_ip

    assert parse_ip(_Spelled("203.0.113.9")) == ipaddress.ip_address("10.0.0.1")
    cip = ClientIP(["10.0.0.0/8"])
    assert cip.is_trusted(_Spelled("203.0.113.9"))
    assert not cip.is_trusted("203.0.113.9")
    assert cip.is_trusted(_Spelled("2001:db8::1"))  # read through str(), as ipaddress always read it
    assert cip.is_trusted("2001:db8::1") is False  # the plain text of the same characters: not remembered


def test_a_resolver_keeps_its_trusted_networks_and_copies_forget_what_it_remembered() -> None:
    import copy
    import pickle

    cip = ClientIP(["10.0.0.0/8"])
    assert cip.is_trusted("10.1.2.3")
    with pytest.raises(AttributeError):
        cip.networks = ()  # type: ignore[misc]  # fixed at construction, as every answer read from them
    for twin in (copy.copy(cip), copy.deepcopy(cip), pickle.loads(pickle.dumps(cip))):
        assert twin.networks == cip.networks
        assert twin.is_trusted("10.1.2.3")
        assert not twin.is_trusted("203.0.113.9")
        assert twin.resolve("10.1.2.3", {"x-forwarded-for": "198.51.100.2"}).address == "198.51.100.2"
