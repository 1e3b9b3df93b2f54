#!/usr/bin/env bash
# Installs the Debian packages the test suite needs when they are missing:
# Python's websockets (an independent peer for the interop tests), Chromium
# (the browser tests drive it with playwright-core), redis-server (the Redis
# broker's tests start their own servers on free ports), nginx (the
# cluster tests put it in front of several nodes) and systemd (its
# systemd-analyze checks the service unit in docs/deploy), jq (the
# README's command-line cookbook pipes into it) and openssl (the TLS tests
# make their certificates with it). The tests fail, loudly, without them.
set -euo pipefail
need=()
/usr/bin/python3 -c 'import websockets' 2>/dev/null || need+=(python3-websockets)
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || need+=(redis-server)
[ -x /usr/sbin/nginx ] || need+=(nginx)
[ -x /usr/bin/systemd-analyze ] || need+=(systemd)
command -v jq >/dev/null 2>&1 || need+=(jq)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
  echo "test-deps: installing ${need[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  # Wait for another apt or dpkg run to let go of its lock rather than fail.
  apt_wait=(-o DPkg::Lock::Timeout=600)
  $SUDO apt-get "${apt_wait[@]}" update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get "${apt_wait[@]}" install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Debian's packages start their own services; the tests start theirs on free ports and need none.
for service in redis-server nginx; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$service" 2>/dev/null; then
    systemctl stop "$service" >/dev/null 2>&1 || true
  fi
done
echo "test-deps: ok"
