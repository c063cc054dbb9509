"""The settings sections of the browser-session layers: cross-origin request protection and the HTTPS redirect.

What lives here: :class:`CSRFSettings` (``GuardSettings.csrf``), :class:`HTTPSRedirectSettings`
(``GuardSettings.https_redirect``) and :class:`TokenCookieSettings` (``GuardSettings.token_cookies``),
re-exported by :mod:`backend_guard.config`; the ``Host`` allowlist is the plain list
``GuardSettings.trusted_hosts``. Each maps onto its part's constructor as the other sections do (only the
fields a user set are passed on). All are off by default: cross-origin protection is switched on by
``csrf=True``, by setting any of its fields, or by switching cookie tokens on (which refuses ``csrf=False``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from . import tokens as _tokens
from ._settings_base import Section
from ._shell_browser import ExemptPaths
from .clientip import ClientIP
from .csrf import CrossOriginProtection
from .exceptions import ConfigurationError
from .hosts import HTTPSRedirect, TrustedHosts
from .tokens._cookie_jar import check_cookie_options

if TYPE_CHECKING:
    # TokenCookies is read through the token package's PEP 562 table when the settings build it: it loads
    # PyJWT and cryptography, which settings that put no tokens in cookies never need.
    from .errors import ErrorPolicy
    from .tokens import TokenCookies, TokenManager

__all__ = ["CSRFSettings", "HTTPSRedirectSettings", "TokenCookieSettings", "trusted_hosts"]


class CSRFSettings(Section):
    """Cross-origin request protection (see :class:`~backend_guard.CrossOriginProtection`); on when
    ``enabled=True`` (``csrf=True``) or any other field is set.

    ``exempt_paths`` are never refused (``"/hooks/stripe"`` exactly, ``"/hooks/"`` everything under it); views
    marked with :func:`~backend_guard.csrf.csrf_exempt` are exempt in every framework.

    Example::

        CSRFSettings(trusted_origins=["https://admin.example.com"], exempt_paths=["/hooks/"])
    """

    enabled: bool | None = None
    trusted_origins: list[str] = []
    allow_same_site: bool = False
    allow_null_origin: bool = False
    exempt_paths: list[str] = []

    @property
    def active(self) -> bool:
        """True when the protection is on: explicitly, or by configuring any of its fields."""
        if self.enabled is not None:
            return self.enabled
        return bool(self.model_fields_set - {"enabled"})

    def build(self) -> CrossOriginProtection:
        """The compiled :class:`~backend_guard.CrossOriginProtection`."""
        return CrossOriginProtection(**self._kwargs("exempt_paths"))

    def check(self) -> None:
        """Build the policy and the exempt paths once, so a mistake fails at start-up."""
        self.build()
        ExemptPaths(self.exempt_paths, setting="CrossOriginProtection")


class TokenCookieSettings(Section):
    """Tokens in cookies (see :class:`~backend_guard.TokenCookies`); on, they switch ``csrf`` on (never off).

    On when ``enabled=True`` (``token_cookies=True``) or any other field is set. ``csrf=False`` with them is
    refused at start-up; ``parts.token_cookies()`` builds the companion with the stack's cross-origin policy and
    trusted proxies.

    Example::

        TokenCookieSettings(refresh_path="/auth/refresh", accept="cookie")
    """

    enabled: bool | None = None
    refresh_path: str = "/auth/refresh"
    accept: Literal["header", "cookie", "both"] = "both"
    access_cookie: str = "__Host-access"
    refresh_cookie: str = "__Secure-refresh"

    @property
    def active(self) -> bool:
        """True when cookie tokens are on: explicitly, or by configuring any of their fields."""
        if self.enabled is not None:
            return self.enabled
        return bool(self.model_fields_set - {"enabled"})

    def check(self) -> None:
        """Refuse a refresh path or cookie name :class:`~backend_guard.TokenCookies` would refuse, at start-up."""
        check_cookie_options(self.refresh_path, self.accept, self.access_cookie, self.refresh_cookie)

    def build(
        self,
        tm: TokenManager,
        csrf: CrossOriginProtection,
        client_ip: ClientIP | None,
        errors: ErrorPolicy | None = None,
    ) -> TokenCookies:
        """The :class:`~backend_guard.TokenCookies` of ``tm``, checking ``csrf`` with ``client_ip``'s proxies, its
        refusals rendered under ``errors`` (default: ``tm``'s)."""
        return _tokens.TokenCookies(tm, csrf=csrf, client_ip=client_ip, errors=errors, **self._kwargs())


class HTTPSRedirectSettings(Section):
    """The redirect of plain-HTTP requests to HTTPS (see :class:`~backend_guard.HTTPSRedirect`); off unless
    ``enabled=True`` (``https_redirect=True``). It never redirects to a host ``trusted_hosts`` refuses.

    Example::

        HTTPSRedirectSettings(enabled=True, exempt_paths=["/health"], safe_status=308)
    """

    enabled: bool = False
    exempt_paths: list[str] = []
    safe_status: Literal[301, 308] = 301
    https_port: int | None = Field(None, gt=0, lt=65536)

    def build(self, hosts: TrustedHosts | None = None) -> HTTPSRedirect:
        """The compiled :class:`~backend_guard.HTTPSRedirect` (``hosts``: the ``Host`` allowlist, if any)."""
        return HTTPSRedirect(**self._kwargs(), trusted_hosts=hosts)


def trusted_hosts(hosts: list[str]) -> TrustedHosts | None:
    """The :class:`~backend_guard.TrustedHosts` of ``GuardSettings.trusted_hosts``; None when the list is empty
    (the check is off). ``"*"`` is refused: it is the check switched off, spelt as if it were on.

    Example::

        >>> trusted_hosts([]) is None, trusted_hosts(["example.com"]).allows("example.com")
        (True, True)
    """
    if not hosts:
        return None
    if "*" in hosts:
        raise ConfigurationError(
            "'*' accepts any Host header, so links the application builds could point anywhere; list your hosts"
            " (['example.com', '*.example.com']) or leave trusted_hosts empty to switch the check off."
        )
    return TrustedHosts(hosts)
