"""GuardSettings: validated at start-up, unsafe values named, loadable from the environment."""

from __future__ import annotations

import logging

import pytest

import backend_guard as bg
from backend_guard._stack import StackParts


def test_defaults_build_a_secure_stack() -> None:
    settings = bg.GuardSettings()
    parts = StackParts.build(settings)
    assert parts.secure_headers is not None
    assert parts.errors is not None
    assert parts.request_id is not None
    assert parts.cors is None  # CORS is off until an origin is configured
    assert parts.rate_limit is False  # no RateLimit middleware until a limit is configured
    assert isinstance(parts.limiter, bg.RateLimiter)  # ... but route decorators work: the limiter is always there
    assert parts.limiter.store is parts.store
    assert isinstance(parts.store, bg.MemoryStore)


def test_settings_are_frozen() -> None:
    settings = bg.GuardSettings()
    with pytest.raises(Exception, match="frozen"):
        settings.store = "redis://x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("data", "names"),
    [
        ({"cors": {"allow_origins": ["*"], "allow_credentials": True}}, "cors"),
        ({"cors": {"allow_origins": ["https://a.example/path"]}}, "cors"),
        ({"secure_headers": {"csp": "default-src self"}}, "secure_headers"),
        ({"rate_limit": {"default_limits": "lots per fortnight"}}, "rate_limit"),
        ({"trusted_proxies": ["not-a-cidr"]}, "trusted_proxies"),
        ({"store": "ftp://x"}, "store"),
        ({"lockout": {"max_failures": 0}}, "lockout.max_failures"),
        ({"lockout": {"account_ceiling": 500}}, "lockout.account_ceiling"),
        ({"cors": {"allow_originz": ["https://a"]}}, "cors.allow_originz"),
    ],
)
def test_invalid_or_unsafe_settings_fail_with_the_setting_named(data: dict[str, object], names: str) -> None:
    with pytest.raises(bg.ConfigurationError) as info:
        bg.GuardSettings(**data)  # type: ignore[arg-type]
    assert names in str(info.value)


def test_error_messages_never_echo_secret_values() -> None:
    with pytest.raises(bg.ConfigurationError) as info:
        bg.GuardSettings(tokens={"key": "s3cret-value", "access_ttl": -1})  # type: ignore[arg-type]
    assert "s3cret-value" not in str(info.value)
    assert "tokens.access_ttl" in str(info.value)


def test_from_env_reads_nested_sections() -> None:
    env = {
        "BACKEND_GUARD_STORE": "memory://?max_keys=1000",
        "BACKEND_GUARD_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.0.0/16",
        "BACKEND_GUARD_CORS__ALLOW_ORIGINS": '["https://app.example.com"]',
        "BACKEND_GUARD_CORS__ALLOW_CREDENTIALS": "true",
        "BACKEND_GUARD_RATE_LIMIT__DEFAULT_LIMITS": "100/minute",
        "BACKEND_GUARD_RATE_LIMIT__RULES": '[{"path": "/login", "limits": "5/minute", "methods": ["POST"]}]',
        "BACKEND_GUARD_SECURE_HEADERS__PRESET": "web",
        "BACKEND_GUARD_LOCKOUT__MAX_FAILURES": "7",
        "BACKEND_GUARD_TOKENS__KEY": "x" * 40,
        "BACKEND_GUARD_TOKENS__ALGORITHM": "HS256",
        "OTHER_VARIABLE": "ignored",
    }
    settings = bg.GuardSettings.from_env(env)
    assert settings.trusted_proxies == ["10.0.0.0/8", "192.168.0.0/16"]
    assert settings.cors.allow_origins == ["https://app.example.com"]
    assert settings.cors.allow_credentials is True
    assert settings.rate_limit.rules[0].path == "/login"
    assert settings.secure_headers.preset == "web"
    assert settings.lockout.max_failures == 7
    parts = StackParts.build(settings)
    assert parts.cors is not None
    assert parts.cors.is_allowed_origin("https://app.example.com")
    assert parts.limiter is not None
    tm = parts.tokens()
    assert tm.verify_access(tm.issue("alice").access_token)["sub"] == "alice"
    assert parts.lockout().check("alice", "1.2.3.4").locked is False
    assert "x" * 40 not in repr(settings)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"BACKEND_GUARD_CORS__ALLOW_ORIGINS": "*", "BACKEND_GUARD_CORS__ALLOW_CREDENTIALS": "true"}, "cors"),
        ({"BACKEND_GUARD_CORS__NOPE": "1"}, "BACKEND_GUARD_CORS__NOPE"),
        ({"BACKEND_GUARD_NOPE__X": "1"}, "BACKEND_GUARD_NOPE__X"),
        ({"BACKEND_GUARD_LOCKOUT__MAX_FAILURES": "many"}, "lockout.max_failures"),
    ],
)
def test_from_env_errors_name_the_setting(env: dict[str, str], named: str) -> None:
    with pytest.raises(bg.ConfigurationError) as info:
        bg.GuardSettings.from_env(env)
    assert named in str(info.value)


def test_each_part_can_be_switched_off() -> None:
    settings = bg.GuardSettings(
        request_id={"enabled": False},
        secure_headers={"enabled": False},
        errors={"enabled": False},
        cors={"enabled": False, "allow_origins": ["https://a.example"]},
        rate_limit={"enabled": False, "default_limits": "1/minute"},
    )
    parts = StackParts.build(settings)
    assert (parts.request_id, parts.secure_headers, parts.errors, parts.cors, parts.rate_limit) == (
        None,
        None,
        None,
        None,
        False,
    )


def test_password_settings_raise_the_policy() -> None:
    hasher = bg.GuardSettings(passwords={"memory_cost": 65536, "time_cost": 3}).passwords.build()
    assert not hasher.needs_rehash(hasher.hash("pw-1234567"))
    with pytest.raises(bg.ConfigurationError):
        bg.GuardSettings(passwords={"memory_cost": 1024, "time_cost": 1}).passwords.build()


def test_from_env_ignores_tool_variables_and_warns_on_unknown_top_level(caplog: pytest.LogCaptureFixture) -> None:
    env = {"BACKEND_GUARD_REQUIRE_REDIS": "1", "BACKEND_GUARD_DEMO_STORE": "memory://", "BACKEND_GUARD_STOER": "x"}
    settings = bg.GuardSettings.from_env(env)
    assert settings.store == "memory://"
    warnings = [r.getMessage() for r in caplog.records if r.name == "backend_guard.config"]
    assert warnings == ["BACKEND_GUARD_STOER is not a backend_guard setting; ignored."]


def test_a_stack_without_a_token_key_builds_and_asking_it_for_tokens_says_how_to_make_a_key() -> None:
    parts = StackParts.build(bg.GuardSettings(cors={"allow_origins": ["https://app.example.com"]}))
    with pytest.raises(bg.ConfigurationError) as info:
        parts.tokens()
    message = str(info.value)
    assert message.startswith("tokens.key:")
    assert "BACKEND_GUARD_TOKENS__KEY" in message
    assert "bg.generate_key()" in message
    assert "backend-guard keys" in message
    pem, _jwk = bg.generate_key("EdDSA")
    keyed = StackParts.build(bg.GuardSettings(tokens={"key": pem}))
    assert keyed.tokens().verify_access(keyed.tokens().issue("user-1").access_token)["sub"] == "user-1"


def test_a_framework_dict_is_read_over_the_environment_the_dict_winning_field_by_field() -> None:
    # A Flask app whose dict set only trusted_proxies ran on memory:// with BACKEND_GUARD_STORE in its
    # environment (which the backend-guard command line read): the sources did not combine.
    env = {
        "BACKEND_GUARD_STORE": "memory://?max_keys=1000",
        "BACKEND_GUARD_TRUSTED_PROXIES": "10.0.0.0/8",
        "BACKEND_GUARD_RATE_LIMIT__DEFAULT_LIMITS": "5/minute",
        "BACKEND_GUARD_RATE_LIMIT__HEADERS": "false",
        "BACKEND_GUARD_CSRF__TRUSTED_ORIGINS": "https://sso.example.com",
        "BACKEND_GUARD_REQUIRE_REDIS": "1",  # a tool's variable, not a setting
    }
    given = {"trusted_proxies": ["192.0.2.1"], "rate_limit": {"default_limits": "100/minute"}, "csrf": True}
    settings = bg.GuardSettings.coerce(given, "app.config['BACKEND_GUARD']", env)
    assert settings.store == "memory://?max_keys=1000"  # only the environment sets it
    assert settings.trusted_proxies == ["192.0.2.1"]  # both set it: the dict wins
    assert settings.rate_limit.default_limits == "100/minute"
    assert settings.rate_limit.headers is False  # the section's other field keeps the environment's
    assert settings.csrf.enabled is True  # the dict's switch, merged with the environment's field
    assert settings.csrf.trusted_origins == ["https://sso.example.com"]
    # None (no dict) is the environment alone; a GuardSettings is taken whole.
    assert bg.GuardSettings.coerce(None, "settings.BACKEND_GUARD", env) == bg.GuardSettings.from_env(env)
    whole = bg.GuardSettings(trusted_proxies=["192.0.2.1"])
    assert bg.GuardSettings.coerce(whole, "settings.BACKEND_GUARD", env) is whole


def test_an_environment_variable_a_framework_dict_cannot_take_is_named_with_both_sources() -> None:
    env = {"BACKEND_GUARD_LOCKOUT__MAX_FAILURES": "0"}
    with pytest.raises(bg.ConfigurationError) as info:
        bg.GuardSettings.coerce({"store": "memory://"}, "settings.BACKEND_GUARD", env)
    message = str(info.value)
    assert message.startswith("settings.BACKEND_GUARD (over the BACKEND_GUARD_* environment variables): ")
    assert "lockout.max_failures" in message
    with pytest.raises(bg.ConfigurationError, match="BACKEND_GUARD_LOCKOUT__MAX_FAILUREZ"):
        bg.GuardSettings.coerce({}, "settings.BACKEND_GUARD", {"BACKEND_GUARD_LOCKOUT__MAX_FAILUREZ": "3"})


def test_a_section_object_in_a_framework_dict_keeps_the_environment_fields_it_was_not_given() -> None:
    # {"lockout": LockoutSettings(generic=True)} dropped BACKEND_GUARD_LOCKOUT__SECRET: the app hashed account
    # names with the public key while backend-guard (from the environment) used the secret.
    from backend_guard.config import LockoutSettings

    env = {"BACKEND_GUARD_LOCKOUT__SECRET": "s" * 32, "BACKEND_GUARD_LOCKOUT__MAX_FAILURES": "3"}
    settings = bg.GuardSettings.coerce({"lockout": LockoutSettings(generic=True)}, "settings.BACKEND_GUARD", env)
    assert settings.lockout.generic is True
    assert settings.lockout.max_failures == 3
    assert settings.lockout.secret is not None
    assert settings.lockout.secret.get_secret_value() == "s" * 32


def test_the_environment_switching_off_a_section_the_dict_configures_is_said_once_by_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    env = {
        "BACKEND_GUARD_CSRF": "false",
        "BACKEND_GUARD_STORE": "memory://?max_keys=7",
        "BACKEND_GUARD_TOKENS__KEY": "k" * 40,
        "BACKEND_GUARD_PASSWORD_PEPPERS": '{"p1": "secret-pepper"}',  # a Django setting's name: not ours
    }
    given = {"csrf": {"trusted_origins": ["https://sso.example.com"]}}
    with caplog.at_level(logging.INFO, logger="backend_guard.config"):
        for _ in range(3):
            settings = bg.GuardSettings.coerce(given, "app.config['BACKEND_GUARD']", env)
    assert settings.csrf.enabled is False  # the environment's, as documented: but said
    messages = [r.getMessage() for r in caplog.records if r.name == "backend_guard.config"]
    assert messages == [
        "app.config['BACKEND_GUARD'] configures csrf, and the environment (BACKEND_GUARD_CSRF or "
        "BACKEND_GUARD_CSRF__ENABLED) switches it off.",
        "app.config['BACKEND_GUARD']: taken from the environment: csrf.enabled, store, tokens.key.",
    ]
    assert "k" * 40 not in caplog.text
    assert "max_keys" not in caplog.text


def test_a_misspelt_environment_variable_is_named_as_one_with_the_setting_it_resembles() -> None:
    with pytest.raises(bg.ConfigurationError) as info:
        bg.GuardSettings.coerce({}, "settings.BACKEND_GUARD", {"BACKEND_GUARD_CORS__ALLOWORIGINS": "https://a.example"})
    assert str(info.value) == (
        "environment variable BACKEND_GUARD_CORS__ALLOWORIGINS: cors has no setting 'alloworigins'"
        " (did you mean 'allow_origins'?)."
    )
    with pytest.raises(
        bg.ConfigurationError,
        match=r"^environment variable BACKEND_GUARD_LOCKUOT__MAX_FAILURES: .*"
        r"did you mean 'lockout'",
    ):
        bg.GuardSettings.from_env({"BACKEND_GUARD_LOCKUOT__MAX_FAILURES": "3"})
