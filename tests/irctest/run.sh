#!/usr/bin/env bash
# deno task irctest: runs the irctest conformance suite against charla's IRC
# port, with our controller (tests/irctest/charla.py). irctest itself is not in
# this repository: every checkout and CI has it, unmodified, at
# ../shared/irctest beside the repository.
#
# Usage: bash tests/irctest/run.sh [pytest options]
#   e.g. bash tests/irctest/run.sh -x          stop at the first failure
#        bash tests/irctest/run.sh -k who.py   one group only (-k given twice: the last wins)
#        IRCTEST_DEBUG_LOGS=1 bash tests/irctest/run.sh   with the server's output
#        IRCTEST_DIR=/elsewhere/irctest bash tests/irctest/run.sh   (a worktree
#          whose parent folder has no shared/)
#
# Only the groups below run; irctest's optional Python packages (ecdsa,
# filelock, websockets) are not needed for them (filelock only under
# pytest-xdist; ecdsa only for client SASL tests; websockets only for
# server_tests/websocket.py, which is skipped without it).
set -euo pipefail
cd "$(dirname "$0")/../.."

IRCTEST=${IRCTEST_DIR:-../shared/irctest}
if [ ! -f "$IRCTEST/conftest.py" ]; then
  echo "irctest: no irctest at $IRCTEST (from $(pwd)): it belongs at ../shared/irctest" \
    "beside the repository; set IRCTEST_DIR to use another folder" >&2
  exit 1
fi
# irctest runs under pytest 7.4 or newer (its conftest uses hookimpl(wrapper=True)),
# but not 9.0.0 (pytest-dev/pytest#13895): the first python3 on PATH with such a
# pytest, else the system's; else Debian's python3-pytest is installed when we may
# (root with apt-get; bookworm's 7.2 is too old, trixie's 8.3 is fine); else stop
# and say how to get one.
usable() {
  command -v "$1" >/dev/null 2>&1 && "$1" - <<'PY' 2>/dev/null
import pytest
pytest.hookimpl(wrapper=True)
assert pytest.__version__ != "9.0.0"
PY
}
PYTHON=""
for candidate in python3 /usr/bin/python3; do
  if usable "$candidate"; then PYTHON=$candidate; break; fi
done
if [ -z "$PYTHON" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 &&
  ! /usr/bin/python3 -c 'import pytest' 2>/dev/null; then
  echo "irctest: no python3 with pytest; installing Debian's python3-pytest" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2 && apt-get install -y -qq --no-install-recommends python3-pytest >&2 || true
  usable /usr/bin/python3 && PYTHON=/usr/bin/python3
fi
if [ -z "$PYTHON" ]; then
  found=$(python3 -c 'import pytest; print(pytest.__version__)' 2>/dev/null || echo none)
  echo "irctest: needs python3 with pytest 7.4 or newer, not 9.0.0 (python3 has: $found); then run again:" >&2
  echo "  python3 -m pip install 'pytest>=7.4,!=9.0.0'" >&2
  exit 1
fi

# One group per file of irctest/server_tests/, matched on the module name
# (pytest -k matches names of the test, its class and its file). PRIVMSG and
# NOTICE are in messages.py; extended_join.py is an IRCv3 extension, not "join".
SUITES=(
  connection_registration.py pingpong.py messages.py "(join.py and not extended_join.py)"
  part.py names.py who.py quit.py isupport.py cap.py utf8.py topic.py away.py whois.py list.py
)
selection=""
for group in "${SUITES[@]}"; do selection+="${selection:+ or }$group"; done

export PYTHONPATH="$PWD/tests/irctest${PYTHONPATH:+:$PYTHONPATH}"
# irctest's folder is shared and read-only in CI: write no caches into it (nor
# pytest-benchmark's .benchmarks/ into the repository, where it is installed).
export PYTHONDONTWRITEBYTECODE=1
plugins=(-p no:cacheprovider)
"$PYTHON" -c 'import pytest_benchmark' 2>/dev/null && plugins+=(-p no:benchmark)
exec "$PYTHON" -m pytest "${plugins[@]}" \
  --rootdir "$IRCTEST" -c "$IRCTEST/pytest.ini" "$IRCTEST/irctest/server_tests" \
  --controller charla \
  -m 'not Ergo and not deprecated and not strict and not services' \
  -k "$selection" \
  "$@"
