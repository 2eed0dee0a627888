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
if ! python3 -c 'import pytest' 2>/dev/null; then
  echo "irctest: python3 has no pytest (irctest runs under pytest)" >&2
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
python3 -c 'import pytest_benchmark' 2>/dev/null && plugins+=(-p no:benchmark)
exec python3 -m pytest "${plugins[@]}" \
  --rootdir "$IRCTEST" -c "$IRCTEST/pytest.ini" "$IRCTEST/irctest/server_tests" \
  --controller charla \
  -m 'not Ergo and not deprecated and not strict and not services' \
  -k "$selection" \
  "$@"
