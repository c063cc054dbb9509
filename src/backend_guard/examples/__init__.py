"""Small real apps, one per framework, showing the whole library at work (and served by ``backend-guard demo``).

Every app has the same routes, backed by one framework-free :class:`~backend_guard.examples.service.AuthService`:

- ``GET /health``; ``GET /`` an HTML page whose inline script carries the CSP nonce (``web`` policy);
- ``POST /register`` and ``POST /login`` (JSON ``{"email", "password"}``): argon2id hashing with rehash,
  lockout reserved before the password check, a per-address rate limit on the route;
- ``POST /refresh`` (``{"refresh_token"}``): rotation with reuse detection;
- ``GET /me`` and ``POST /logout-all``: a bearer access token required.

Run one: ``uvicorn backend_guard.examples.fastapi_app:app``, ``uvicorn backend_guard.examples.starlette_app:app``,
``flask --app backend_guard.examples.flask_app run``, ``waitress-serve backend_guard.examples.django_app:application``.
"""
