#!/usr/bin/env bash
# Prepares this checkout to run nestlab on a Debian machine with npm.
#   bash deploy/setup.sh          what `nestlab up` and the CLI use
#   bash deploy/setup.sh --test   that, and what the tests use as well
# Steps, each doing nothing when already done (safe to run again):
#  - Node.js meeting package.json's engines: the system's, else the pinned
#    release in .nestlab/node/ (deploy/node/install.sh); every later step runs on it;
#  - Debian packages, installed with apt only when missing (as root or via sudo):
#    nats-server (the real message broker) always; with --test also
#    linux-libc-dev + gcc (the virtio uapi headers the layout tests cross-check
#    against) and chromium (the console's browser test; no browser downloads);
#  - npm dependencies (npm ci) when node_modules is missing, older than the
#    lockfile, or was installed by another Node version;
#  - the TypeScript build (turbo, cached).
set -euo pipefail
cd "$(dirname "$0")/.."

tests=0
case "${1:-}" in
  '') ;;
  --test) tests=1 ;;
  *)
    echo "usage: deploy/setup.sh [--test]" >&2
    exit 2
    ;;
esac

bash deploy/node/install.sh
. deploy/node/env.sh

need_apt=()
command -v nats-server >/dev/null 2>&1 || need_apt+=(nats-server)
if [ $tests -eq 1 ]; then
  [ -f /usr/include/linux/virtio_ring.h ] || need_apt+=(linux-libc-dev)
  command -v cc >/dev/null 2>&1 || need_apt+=(gcc)
  # node-gyp builds usocket (the vhost-user back-end's fd passing) with python3, g++ and make.
  command -v g++ >/dev/null 2>&1 || need_apt+=(g++)
  command -v make >/dev/null 2>&1 || need_apt+=(make)
  command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
  command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need_apt[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# node_modules records the Node that installed it: a new Node reinstalls.
stamp=node_modules/.nestlab-node-version
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ] ||
  [ "$(cat "$stamp" 2>/dev/null)" != "$(node --version)" ]; then
  echo "setup: npm ci (node $(node --version), npm $(npm --version))" >&2
  # Native addons (usocket) build against the project Node's headers, whatever
  # a user-level nodedir in ~/.npmrc says (a system Node's would not load).
  if [ -n "${NESTLAB_NODE_DIR:-}" ]; then
    npm_config_nodedir="$NESTLAB_NODE_DIR" npm ci --no-audit --no-fund
  else
    npm ci --no-audit --no-fund
  fi
  node --version >"$stamp"
fi

echo "setup: building" >&2
npx turbo run build --output-logs=errors-only
