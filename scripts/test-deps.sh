#!/usr/bin/env bash
# Installs the system packages the test suite needs when they are missing:
# Python's websockets (an independent peer for the interop tests) and
# Debian's Chromium (the browser tests drive it with playwright-core; they
# fail, loudly, without it).
set -euo pipefail
need=()
/usr/bin/python3 -c 'import websockets' 2>/dev/null || need+=(python3-websockets)
[ -x /usr/bin/chromium ] || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  echo "test-deps: installing ${need[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
echo "test-deps: ok"
