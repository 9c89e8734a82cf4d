#!/usr/bin/env bash
# Prepares this checkout to run nestlab on a Debian machine with Node 20 and npm:
#  - Debian packages the lab and its tests use, installed only when missing:
#    nats-server (the real message broker), linux-libc-dev + gcc (the virtio
#    uapi headers the layout tests cross-check against);
#  - npm dependencies (npm ci) when node_modules is missing or older than the lockfile;
#  - the TypeScript build (turbo, cached).
# Safe to run again: each step does nothing when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v nats-server >/dev/null 2>&1 || need_apt+=(nats-server)
[ -f /usr/include/linux/virtio_ring.h ] || need_apt+=(linux-libc-dev)
command -v cc >/dev/null 2>&1 || need_apt+=(gcc)
# The console's browser test drives Debian's chromium (no browser downloads).
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need_apt[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci" >&2
  npm ci --no-audit --no-fund
fi

echo "setup: building" >&2
npx turbo run build --output-logs=errors-only

