#!/usr/bin/env bash
# The project's two entry points, from a fresh clone on a fresh machine:
#   bash scripts/dev.sh demo   -> set up, then serve the demo app on http://127.0.0.1:8000 (memory store)
#   bash scripts/dev.sh test   -> set up, then lint, type-check, build the docs and run the whole test suite
# Set-up is idempotent: a virtual environment in .venv (override with VENV=...), the package in editable mode
# with the extras the command needs, and, for tests, a Redis answering on 127.0.0.1:6379.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
PY="${PYTHON:-python3}"

setup() {
  local extras="$1"
  if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
  fi
  "$VENV/bin/python" -m pip install -q -e ".[$extras]"
}

ensure_redis() {
  if "$VENV/bin/python" - <<'PY' 2>/dev/null; then return 0; fi
import socket, sys
s = socket.create_connection(("127.0.0.1", 6379), timeout=1)
s.sendall(b"PING\r\n")
sys.exit(0 if s.recv(16).startswith(b"+PONG") else 1)
PY
  if ! command -v redis-server >/dev/null 2>&1; then
    echo "redis-server missing: installing Debian's redis-server" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server) >/dev/null
  fi
  echo "starting redis-server on 127.0.0.1:6379" >&2
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
  for _ in $(seq 1 50); do
    redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "redis-server did not answer on 127.0.0.1:6379" >&2
  return 1
}

apt_install() {
  # Debian packages the tests drive for real (a browser, a load generator); installed when missing and possible.
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian packages: $*" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@") >/dev/null
  else
    echo "not root or no apt-get: the tests that need $* will skip" >&2
  fi
}

ensure_tools() {
  local missing=()
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v wrk >/dev/null 2>&1 || missing+=(wrk)
  if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi
  # MDN HTTP Observatory's own grader (npm), for the secure-headers A+ test. --ignore-scripts: its install
  # scripts download lists; the HSTS preload list it would fetch is replaced by an empty one.
  if command -v npm >/dev/null 2>&1; then
    local obs=tests/.observatory
    if [ ! -d "$obs/node_modules/@mdn/mdn-http-observatory" ]; then
      npm ci --ignore-scripts --silent --prefix "$obs" >/dev/null 2>&1 || npm install --ignore-scripts --silent --prefix "$obs" >/dev/null
    fi
    echo '{}' > "$obs/node_modules/@mdn/mdn-http-observatory/conf/hsts-preload.json"
  fi
}

cmd="${1:-}"
shift || true
# The oldest redis-py the package accepts (pyproject: redis>=5.0) and the releases whose pool-exhaustion error
# differs: the Redis store's tests (its own send path included) run again on each, against the same server.
redis_compat() {
  local v dir
  for v in 5.0.0 6.0.0 7.0.0; do
    dir="$VENV/compat/redis-$v"
    if [ ! -d "$dir/redis" ]; then
      "$VENV/bin/python" -m pip install -q --no-deps --target "$dir" "redis==$v"
    fi
    echo "redis-py $v: the Redis store's tests"
    PYTHONPATH="$dir" "$VENV/bin/python" -c 'import redis, sys; assert redis.__version__ == sys.argv[1], redis.__version__' "$v"
    PYTHONPATH="$dir" "$VENV/bin/python" -m pytest -q -p no:cacheprovider -W ignore::DeprecationWarning \
      tests/test_redis_direct.py tests/test_storage.py tests/test_storage_faults.py
  done
}

# Every Python the package claims (requires-python >= 3.10; 3.11 runs everything above): the suite again, without
# the real-server, browser and slow tests, on 3.10 with the oldest release of every dependency pyproject accepts
# and on 3.12 and 3.13 with the newest. Interpreters come from PATH (python3.X) or pyenv; CI requires all of them
# (BACKEND_GUARD_REQUIRE_PYTHONS=1), elsewhere a missing one is skipped with a note.
find_python() {
  local v="$1" found
  found=$(command -v "python$v" 2>/dev/null || true)
  # A pyenv shim is on PATH even where that version is not selected: only an interpreter that runs counts.
  if [ -n "$found" ] && ! "$found" -c "" >/dev/null 2>&1; then found=""; fi
  if [ -z "$found" ]; then
    found=$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$v".*/bin/python3 2>/dev/null | sort -V | tail -n 1 || true)
  fi
  echo "$found"
}

python_matrix() {
  local entry v deps interp env_dir constraint
  for entry in 3.10:oldest 3.12:newest 3.13:newest; do
    v="${entry%%:*}"
    deps="${entry##*:}"
    interp=$(find_python "$v")
    if [ -z "$interp" ]; then
      if [ "${BACKEND_GUARD_REQUIRE_PYTHONS:-}" = 1 ]; then
        echo "Python $v not found (PATH or pyenv) and BACKEND_GUARD_REQUIRE_PYTHONS=1" >&2
        return 1
      fi
      echo "Python $v not found: its run is skipped" >&2
      continue
    fi
    env_dir="$VENV-py$v-$deps"
    constraint=()
    if [ "$deps" = oldest ]; then constraint=(-c scripts/oldest-constraints.txt); fi
    if [ ! -x "$env_dir/bin/python" ]; then
      "$interp" -m venv "$env_dir"
      "$env_dir/bin/python" -m pip install -q --upgrade pip
    fi
    "$env_dir/bin/python" -m pip install -q "${constraint[@]}" -e ".[test]"
    echo "Python $v with the $deps dependencies: the suite without real servers, browsers and slow tests"
    "$env_dir/bin/python" -m pytest -q -p no:cacheprovider -m "not server and not slow"
  done
}

case "$cmd" in
  demo)
    setup "all"
    exec "$VENV/bin/backend-guard" demo "$@"
    ;;
  test)
    setup "dev,docs,bench"
    ensure_redis
    ensure_tools
    "$VENV/bin/ruff" check src tests benchmarks scripts
    "$VENV/bin/ruff" format --check src tests benchmarks scripts
    "$VENV/bin/mypy" --strict src
    "$VENV/bin/python" scripts/code_figures.py
    NO_MKDOCS_2_WARNING=1 "$VENV/bin/mkdocs" build --strict --quiet --site-dir "$(mktemp -d)"
    "$VENV/bin/python" -m pytest "$@"
    redis_compat
    python_matrix
    ;;
  *)
    echo "usage: bash scripts/dev.sh demo|test [args]" >&2
    exit 2
    ;;
esac
