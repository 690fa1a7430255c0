#!/usr/bin/env bash
# Fuzzes every endpoint of the OpenAPI document (GET /api/openapi.json) with schemathesis.
# Installs schemathesis (pip) when missing, starts a Sluice server from $SLUICE_BIN (default .build/debug/sluice)
# on a free loopback port with a fresh SQLite database and a known root password, logs in as root (session cookie),
# creates an sk- key, and runs `st run` in three passes:
#   1. the relay and key-holder endpoints, with the key (first, on the fresh database: no channel exists, so no call
#      leaves the machine);
#   2. the management API, with root's session cookie;
#   3. logout, which ends that session.
# Checks: no 5xx, and every answer's status, content type and body conform to the document. Each operation gets at
# most $SLUICE_FUZZ_EXAMPLES (default 20) generated cases, and the whole run at most $SLUICE_FUZZ_TIMEOUT seconds
# (default 900). Exits non-zero on any failure. Extra arguments go to every `st run`.
set -uo pipefail

cd "$(dirname "$0")/../.." || exit 2
REPO=$(pwd)
SLUICE_BIN=${SLUICE_BIN:-.build/debug/sluice}
case "$SLUICE_BIN" in /*) ;; *) SLUICE_BIN="$REPO/$SLUICE_BIN" ;; esac
PYTHON=${PYTHON:-python3}
EXAMPLES=${SLUICE_FUZZ_EXAMPLES:-20}
TIMEOUT=${SLUICE_FUZZ_TIMEOUT:-900}

if ! "$PYTHON" -c 'import schemathesis' >/dev/null 2>&1; then
  echo "run.sh: installing schemathesis" >&2
  "$PYTHON" -m pip install --quiet --disable-pip-version-check schemathesis || exit 2
fi
ST=$(command -v st || true)
if [ -z "$ST" ]; then ST="$("$PYTHON" -c 'import sys, os; print(os.path.join(os.path.dirname(sys.executable), "st"))')"; fi
[ -x "$ST" ] || { echo "run.sh: schemathesis's st command not found" >&2; exit 2; }
if [ ! -x "$SLUICE_BIN" ]; then
  echo "run.sh: no server binary at $SLUICE_BIN (build it with 'swift build', or set SLUICE_BIN)" >&2
  exit 2
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sluice-fuzz.XXXXXX")
PORT=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
BASE="http://127.0.0.1:$PORT"
ROOT_PASSWORD="fuzz-root-$RANDOM$RANDOM"
SERVER_PID=""

cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

SLUICE_HOST=127.0.0.1 SLUICE_PORT="$PORT" SLUICE_DATABASE="sqlite:$WORK/sluice.sqlite" SLUICE_ROOT_PASSWORD="$ROOT_PASSWORD" \
  "$SLUICE_BIN" serve >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
healthy=""
for _ in $(seq 1 300); do
  if curl -fsS "$BASE/healthz" >/dev/null 2>&1; then healthy=1; break; fi
  kill -0 "$SERVER_PID" 2>/dev/null || { echo "run.sh: the server exited"; cat "$WORK/server.log"; exit 2; }
  sleep 0.1
done
[ -n "$healthy" ] || { echo "run.sh: the server did not answer /healthz within 30 seconds"; cat "$WORK/server.log"; exit 2; }

login=$(curl -fsS -D "$WORK/login.headers" -H 'Content-Type: application/json' \
  -d "{\"username\": \"root\", \"password\": \"$ROOT_PASSWORD\"}" "$BASE/api/user/login") || { echo "run.sh: root login failed"; exit 2; }
COOKIE=$(grep -i '^set-cookie:' "$WORK/login.headers" | head -n 1 | sed -E 's/^[Ss]et-[Cc]ookie: *([^;]*).*/\1/' | tr -d '\r')
KEY=$(curl -fsS -H "Cookie: $COOKIE" -H 'Content-Type: application/json' -d '{"name": "fuzz", "unlimited_quota": true}' \
  "$BASE/api/token/" | "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["data"][0]["key"])') || { echo "run.sh: could not create a key"; exit 2; }
[ -n "$COOKIE" ] && [ -n "$KEY" ] || { echo "run.sh: no session cookie or key ($login)"; exit 2; }

deadline=$(( $(date +%s) + TIMEOUT ))
status=0
fuzz() {
  local name=$1; shift
  local left=$(( deadline - $(date +%s) ))
  if [ "$left" -le 0 ]; then echo "run.sh: out of time before the $name pass"; status=1; return; fi
  printf '\n==> schemathesis: %s\n' "$name"
  # From the work directory, so that schemathesis's cache (.schemathesis/) does not land in the repository.
  (cd "$WORK" && timeout --kill-after=10 "$left" "$ST" --config-file "$REPO/Tests/fuzz/schemathesis.toml" --no-color run "$BASE/api/openapi.json" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --max-examples "$EXAMPLES" --phases examples,coverage,fuzzing --workers 1 --request-timeout 20 \
    --output-truncate true "$@") || status=1
  kill -0 "$SERVER_PID" 2>/dev/null || { echo "run.sh: the server died during the $name pass"; tail -n 40 "$WORK/server.log"; status=1; }
}

KEY_PATHS='^/(v1|dashboard)/|^/api/(log|usage)/token$'
# Relay and key-holder endpoints, with the key.
fuzz "relay and key endpoints" --include-path-regex "$KEY_PATHS" -H "Authorization: Bearer $KEY" "${@}"
# The management API, as root. Left out: logout (it would end the session; fuzzed last), and the channel test
# endpoints, which call the fuzzed channel's base_url (which could name any host) and so would leave the loopback.
fuzz "management API" --exclude-path-regex "$KEY_PATHS|^/api/user/logout$|^/api/channel/\{id\}/test$" -H "Cookie: $COOKIE" "${@}"
fuzz "logout" --include-path /api/user/logout -H "Cookie: $COOKIE" "${@}"

if [ "$status" = 0 ]; then echo "fuzz: every operation passed"; else echo "fuzz: failures (see above)"; fi
exit $status
