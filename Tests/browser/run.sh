#!/usr/bin/env bash
# Browser tests of the Sluice console.
# Installs chromium, chromium-driver (apt) and selenium, pytest (pip) when missing, starts a Sluice
# server from $SLUICE_BIN (default .build/debug/sluice) on a free loopback port with a throwaway
# SQLite database, waits for /healthz, runs pytest, stops the server and exits with pytest's code.
# Extra arguments go to pytest, e.g. `Tests/browser/run.sh -k tokens`.
set -uo pipefail

cd "$(dirname "$0")/../.." || exit 2
REPO=$(pwd)
SLUICE_BIN=${SLUICE_BIN:-.build/debug/sluice}
PYTHON=${PYTHON:-python3}
ROOT_PASSWORD=${SLUICE_BROWSER_ROOT_PASSWORD:-sluice-browser-root-pass}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else
    echo "run.sh: need root (or sudo) to install $*" >&2; return 1; fi
}

if ! command -v chromium >/dev/null 2>&1 || [ ! -x /usr/bin/chromedriver ]; then
  echo "run.sh: installing chromium and chromium-driver" >&2
  as_root apt-get update -qq || exit 2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null || exit 2
fi
if ! "$PYTHON" -c 'import selenium, pytest' >/dev/null 2>&1; then
  echo "run.sh: installing selenium and pytest" >&2
  "$PYTHON" -m pip install --quiet selenium pytest || exit 2
fi

if [ ! -x "$SLUICE_BIN" ]; then
  echo "run.sh: no server binary at $SLUICE_BIN (build it with 'swift build', or set SLUICE_BIN)" >&2
  exit 2
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sluice-browser.XXXXXX")
PORT=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
SERVER_PID=""

cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

SLUICE_HOST=127.0.0.1 SLUICE_PORT=$PORT SLUICE_DATABASE="sqlite:$WORK/db.sqlite" SLUICE_ROOT_PASSWORD=$ROOT_PASSWORD \
  SLUICE_PUBLIC_DIR="$REPO/Public" "$SLUICE_BIN" serve >"$WORK/server.log" 2>&1 &
SERVER_PID=$!

URL="http://127.0.0.1:$PORT"
if ! "$PYTHON" - "$URL" <<'PY'
import sys, time, urllib.request
deadline = time.time() + 60
while time.time() < deadline:
    try:
        with urllib.request.urlopen(sys.argv[1] + "/healthz", timeout=2) as response:
            if response.status == 200:
                sys.exit(0)
    except Exception:
        time.sleep(0.2)
sys.exit(1)
PY
then
  echo "run.sh: the server did not become healthy; its log:" >&2
  cat "$WORK/server.log" >&2
  exit 2
fi

SLUICE_URL=$URL SLUICE_ROOT_PASSWORD=$ROOT_PASSWORD timeout 1200 "$PYTHON" -m pytest "$REPO/Tests/browser" -p no:cacheprovider -rs "$@"
STATUS=$?
if [ "$STATUS" -ne 0 ] && [ "$STATUS" -ne 5 ]; then
  echo "run.sh: server log tail:" >&2
  tail -n 40 "$WORK/server.log" >&2
fi
exit $STATUS
