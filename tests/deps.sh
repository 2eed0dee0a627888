#!/usr/bin/env bash
# Makes sure the programs the tests run are installed: `deno task test` runs this
# first. The tests use real peers (redis-server, chromium, IRC clients, nc), never
# mocks, so a missing one is installed here (apt-get, when root) or the run stops
# at once with the command to run. A test never skips for a missing tool.
#
# Usage: bash tests/deps.sh [--check]   (--check: report only, install nothing)
set -euo pipefail

# command -> Debian package. Add a line when a test starts using a new program.
NEEDED=(
  "chromium:chromium"
  "nc:netcat-openbsd"
  # bench/peers_test.ts builds the C relay and runs the Node one.
  "cc:gcc"
  "node:nodejs"
  "redis-server:redis-server"
  "openssl:openssl"
  # Real IRC clients (tests/_irc_clients.ts): ii, sic, WeeChat, irssi under
  # tmux, and inotifywait to follow the files they write.
  "ii:ii"
  "sic:sic"
  "weechat-headless:weechat-headless"
  "irssi:irssi"
  "tmux:tmux"
  "inotifywait:inotify-tools"
  # tests/store_test.ts: when run as root, the read-only-file test drops the
  # capabilities that let root write a read-only file.
  "setpriv:util-linux"
)

missing_pkgs=()
missing_cmds=()
for entry in "${NEEDED[@]}"; do
  cmd="${entry%%:*}"
  pkg="${entry#*:}"
  if ! command -v "$cmd" >/dev/null 2>&1; then
    missing_cmds+=("$cmd")
    missing_pkgs+=("$pkg")
  fi
done
[ ${#missing_pkgs[@]} -eq 0 ] && exit 0

echo "tests/deps.sh: missing ${missing_cmds[*]}" >&2
install=(apt-get install -y --no-install-recommends "${missing_pkgs[@]}")
# As root, or through sudo when it needs no password (CI machines start clean,
# often as a user with passwordless sudo).
as_root=()
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo -n env DEBIAN_FRONTEND=noninteractive)
fi
if [ "${1:-}" != "--check" ] && { [ "$(id -u)" = 0 ] || [ ${#as_root[@]} -gt 0 ]; } &&
  command -v apt-get >/dev/null 2>&1; then
  echo "tests/deps.sh: installing: ${install[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  "${as_root[@]}" apt-get update -qq >&2
  "${as_root[@]}" "${install[@]}" >&2
  for cmd in "${missing_cmds[@]}"; do
    command -v "$cmd" >/dev/null 2>&1 || { echo "tests/deps.sh: $cmd still missing after install" >&2; exit 1; }
  done
  exit 0
fi
echo "tests/deps.sh: install them first, then run the tests again:" >&2
echo "  sudo apt-get update && sudo ${install[*]}" >&2
exit 1
