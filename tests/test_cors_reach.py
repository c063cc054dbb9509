"""CORS wildcards and regexes that would reach other people's sites: refused with credentials, warned without."""

from __future__ import annotations

import logging
import re

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from publicsuffixlist import PublicSuffixList

import backend_guard as bg
from backend_guard.cors import CORSPolicy
from backend_guard.exceptions import ConfigurationError

PSL = PublicSuffixList()

# Public suffixes from both sections of the list: ICANN ones (com, co.uk) and private ones, where each name
# under the suffix belongs to a different customer of a hosting company (github.io, herokuapp.com).
PUBLIC_SUFFIXES = [
    "co.uk",
    "com.au",
    "gov.uk",
    "github.io",
    "herokuapp.com",
    "blogspot.com",
    "netlify.app",
    "vercel.app",
    "pages.dev",
    "azurewebsites.net",
    "appspot.com",
    "s3.amazonaws.com",
]
LABEL = st.from_regex(r"[a-z][a-z0-9]{0,10}", fullmatch=True)


# --- wildcard patterns -------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", PUBLIC_SUFFIXES)
def test_a_credentialed_wildcard_directly_under_a_public_suffix_is_refused(suffix: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        CORSPolicy(allow_origin_patterns=[f"https://*.{suffix}"], allow_credentials=True)
    message = str(info.value)
    assert "allow_origin_patterns" in message
    assert "public suffix" in message
    assert f"https://*.yourname.{suffix}" in message  # what to write instead


@settings(max_examples=60, deadline=None)
@given(suffix=st.sampled_from(PUBLIC_SUFFIXES), own=LABEL, other=LABEL)
def test_a_wildcard_under_ones_own_name_below_a_public_suffix_stays_allowed(suffix: str, own: str, other: str) -> None:
    # Some names below a suffix are public suffixes themselves (r.appspot.com): those stay refused.
    assume(not PublicSuffixList().is_public(f"{own}.{suffix}"))
    policy = CORSPolicy(allow_origin_patterns=[f"https://*.{own}.{suffix}"], allow_credentials=True)
    assert policy.is_allowed_origin(f"https://app.{own}.{suffix}")
    if other != own:
        assert not policy.is_allowed_origin(f"https://app.{other}.{suffix}")
        assert not policy.is_allowed_origin(f"https://{other}.{suffix}")


@pytest.mark.parametrize(
    "pattern",
    ["https://*.example.com", "https://*.app.example.co.uk", "http://*.localhost:*", "https://*.me.github.io"],
)
def test_common_credentialed_wildcards_keep_working(pattern: str) -> None:
    policy = CORSPolicy(allow_origin_patterns=[pattern], allow_credentials=True)
    host = pattern.partition("*.")[2].partition(":")[0]
    assert policy.is_allowed_origin(
        f"{pattern.partition('://')[0]}://preview.{host}" + (":5173" if ":*" in pattern else "")
    )


def test_a_public_suffix_wildcard_without_credentials_is_accepted_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="backend_guard.cors"):
        policy = CORSPolicy(allow_origin_patterns=["https://*.github.io"])
    assert policy.is_allowed_origin("https://someone.github.io")
    assert policy.actual("https://someone.github.io").headers == (
        ("Access-Control-Allow-Origin", "https://someone.github.io"),
    )
    warnings = [r.getMessage() for r in caplog.records if r.name == "backend_guard.cors"]
    assert any("github.io" in w and "public suffix" in w for w in warnings)


def test_settings_name_the_cors_setting_of_a_public_suffix_wildcard() -> None:
    with pytest.raises(bg.ConfigurationError) as info:
        bg.GuardSettings(cors={"allow_origin_patterns": ["https://*.github.io"], "allow_credentials": True})  # type: ignore[arg-type]
    assert "cors" in str(info.value)
    assert "allow_origin_patterns" in str(info.value)


@pytest.mark.parametrize("pattern", ["https://*.amazonaws.com", "https://*.windows.net", "https://*.herokuapp.com"])
def test_a_credentialed_wildcard_over_public_suffixes_below_its_domain_is_refused(
    pattern: str, caplog: pytest.LogCaptureFixture
) -> None:
    # amazonaws.com is Amazon's, but s3.amazonaws.com and hundreds more under it are public suffixes: anyone's
    # bucket website at attacker.s3-website.us-east-1.amazonaws.com would be admitted with the user's cookies.
    with pytest.raises(ConfigurationError) as info:
        CORSPolicy(allow_origin_patterns=[pattern], allow_credentials=True)
    assert "allow_origin_patterns" in str(info.value)
    assert "public suffix" in str(info.value)
    with caplog.at_level(logging.WARNING, logger="backend_guard.cors"):
        CORSPolicy(allow_origin_patterns=[pattern])
    assert any("public suffix" in r.getMessage() for r in caplog.records if r.name == "backend_guard.cors")


# --- origin regexes ----------------------------------------------------------------------------------------

REACHING = [
    r".*",
    r"https://.*",
    r"http(s)?://.*",
    r"https?://.+",
    r"https://.*example\.com",  # evilexample.com
    r"https://[a-z.]*example\.com",
    r"https://[a-z]+\.github\.io",  # anyone's GitHub Pages site
    r"https://[a-z]+\.co\.uk",
    r"https://app\.example\.com.*",  # app.example.com.evil.net
    r"https://app\.example\.com[a-z.]*",
    r"https://example\.[a-z]{2,3}",  # example.<any suffix>
    r"https://[^/]+",
    r"https://\S+",
    r"http://[0-9.]+(:[0-9]+)?",  # any IP address
    r"https://example[0-9]*\.com",
    r"https://[a-f]+\.com",
    r"https://[a-z]+\.example\.com|https://.*",
    # One character of the registrable name left open: other registrants' names of the same length.
    r"https://example\.c[a-z]",  # example.cn, example.ch
    r"https://exampl[a-z]\.com",
    r"https://example[0-9]\.com",
    r"https://shop[0-9]{2}\.com",
    r"https://example\.com|https://[a-z]{3}\.com",
    # Customers' sites under public suffixes below a company's domain (attacker.s3.amazonaws.com).
    r"https://.*\.amazonaws\.com",
    r"https://[a-z0-9.-]+\.windows\.net",
    # A bad alternative after more alternatives than combinations are written out.
    "https://(" + "|".join(f"a{i}" for i in range(60)) + r")\.example\.com|https://[a-z]+\.github\.io",
    r"https://(www|app|api)\.example\.(com|net|org)(:[0-9]{4})?|https://[a-z]+\.github\.io",
]
CONTAINED = [
    r"https://.*\.example\.com",
    r"https://.+\.example\.com",
    r"https://[a-z]+\.example\.(com|net)",
    r"https://[a-z0-9-]+\.example\.com",
    r"^https://[a-z0-9-]+\.example\.com$",
    r"https://(www\.)?example\.com",
    r"https://[a-z]+-preview\.example\.com(:[0-9]+)?",
    r"https?://localhost(:[0-9]+)?",
    r"http://127\.0\.0\.1:[0-9]+",
    r"https://[a-z]+\.me\.github\.io",
    r"https://[a-z.]+\.app\.example\.co\.uk",
    r"(?i)https://APP\.example\.com",
]


@pytest.mark.parametrize("regex", REACHING)
def test_a_credentialed_regex_admitting_hosts_outside_the_domains_it_names_is_refused(regex: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        CORSPolicy(allow_origin_regex=regex, allow_credentials=True)
    message = str(info.value)
    assert "allow_origin_regex" in message
    assert "outside the domains it names" in message
    assert "allow_origin_patterns" in message  # what to write instead


@pytest.mark.parametrize("regex", CONTAINED)
def test_a_credentialed_regex_within_named_domains_is_accepted(regex: str) -> None:
    policy = CORSPolicy(allow_origin_regex=regex, allow_credentials=True)
    for hostile in ("https://attacker.com", "https://app.example.com.evil.net", "https://evilexample.com", "null"):
        assert not policy.is_allowed_origin(hostile)


def test_a_regex_that_cannot_be_checked_is_refused_with_credentials() -> None:
    with pytest.raises(ConfigurationError, match="could not be checked"):
        CORSPolicy(allow_origin_regex=r"https://(app)\1\.example\.com", allow_credentials=True)


def test_a_reaching_regex_without_credentials_is_accepted_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="backend_guard.cors"):
        CORSPolicy(allow_origin_regex=r"https://[a-z]+\.github\.io")
    assert any("outside the domains" in r.getMessage() for r in caplog.records if r.name == "backend_guard.cors")


# A generated family of origin regexes: a scheme part, a part before the domain, a domain part and a tail.
SCHEMES = [r"https://", r"https?://", r"http(s)?://"]
HEADS = ["", r"[a-z]+\.", r".*", r".+\.", r".*\.", r"[a-z.]*", r"(www\.)?", r"[a-z0-9-]+", r"[^/]*"]
DOMAINS = [r"example\.com", r"example\.(com|net)", r"example\.[a-z]+", r"example", r"[a-z]+\.com", r"github\.io"]
TAILS = ["", r".*", r"(:[0-9]+)?", r"[a-z.]*", r"(\.[a-z]+)?"]
ALLOWED = {"example.com", "example.net"}


def _attacker_host(label: str, form: int) -> str:
    return [
        f"{label}.com",
        f"{label}example.com",
        f"{label}.example.com.{label}.net",
        f"example.com.{label}.net",
        f"example.{label}",
        f"{label}.github.io",
        f"example{label}.com",
        f"example.com{label}",
        f"{label}",
    ][form]


@settings(max_examples=300, deadline=None)
@given(
    scheme=st.sampled_from(SCHEMES),
    head=st.sampled_from(HEADS),
    domain=st.sampled_from(DOMAINS),
    tail=st.sampled_from(TAILS),
    label=LABEL,
    form=st.integers(0, 8),
)
def test_an_accepted_credentialed_regex_never_admits_an_attackers_registrable_domain(
    scheme: str, head: str, domain: str, tail: str, label: str, form: int
) -> None:
    regex = scheme + head + domain + tail
    try:
        policy = CORSPolicy(allow_origin_regex=regex, allow_credentials=True)
    except ConfigurationError:
        return
    host = _attacker_host(label, form)
    if policy.is_allowed_origin(f"https://{host}"):
        assert PSL.privatesuffix(host) in ALLOWED or host == "github.io", (regex, host)
        assert re.fullmatch(regex, f"https://{host}")


@settings(max_examples=150, deadline=None)
@given(
    name=st.from_regex(r"[a-z]{3,10}", fullmatch=True),
    suffix=st.sampled_from(["com", "net", "co.uk", "github.io", "de"]),
    data=st.data(),
    loose=st.sampled_from([r"[a-z]", r"[0-9a-z]", r"\w", r"[^.]", r"[a-z0-9-]", r"\S"]),
)
def test_a_credentialed_regex_leaving_any_character_of_the_registrable_name_open_is_refused(
    name: str, suffix: str, data: st.DataObject, loose: str
) -> None:
    # Any one character of the registrable domain (its label or its suffix) written as a class admits another
    # registrant's domain of the same length.
    host = f"{name}.{suffix}"
    positions = [i for i, ch in enumerate(host) if ch != "."]
    i = data.draw(st.sampled_from(positions))
    regex = "https://" + re.escape(host[:i]) + loose + re.escape(host[i + 1 :])
    with pytest.raises(ConfigurationError, match="outside the domains it names"):
        CORSPolicy(allow_origin_regex=regex, allow_credentials=True)


def test_samples_of_nested_repeats_are_never_longer_than_an_origin() -> None:
    from backend_guard.cors._regex_samples import regex_samples

    samples = regex_samples(r"https://(?:(?:(?:a{60}){60}){60}){60}\.example\.com", 512)
    assert all(len(s) <= 512 for s in samples)


@pytest.mark.parametrize(
    "regex",
    [
        "(" * 1000 + "a" + ")" * 1000,  # the stdlib's parser itself runs out of stack
        "https://" + "(?:" * 600 + "a" + ")" * 600 + r"\.example\.com",
        r"https://(?:(?:(?:(?:a{64}){64}){64}){64}){64}\.example\.com",
    ],
)
def test_a_pathological_credentialed_regex_is_a_configuration_error(regex: str) -> None:
    with pytest.raises(ConfigurationError, match=r"allow_origin_regex|origin regex"):
        CORSPolicy(allow_origin_regex=regex, allow_credentials=True)
    with pytest.raises(bg.ConfigurationError, match="cors"):
        bg.GuardSettings(cors={"allow_origin_regex": regex, "allow_credentials": True})  # type: ignore[arg-type]
