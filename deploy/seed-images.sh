#!/usr/bin/env bash
# Builds, with no registry and no network, every image deploy/compose.airgap.yml
# uses, from this machine's own binaries (docker import of minimal root
# filesystems) and this already-built checkout (deploy/setup.sh has run):
#   nestlab/node:local        the project's node (deploy/node/env.sh: the Node
#                             package.json's engines asks for) + the shared
#                             libraries ldd lists, user node (1000)
#   nestlab/nats:local        Debian's nats-server + busybox wget (healthcheck), user nats
#   nestlab/prometheus:local  Debian's prometheus + busybox wget, user nobody (65534)
#   nestlab/services:local    the built monorepo (production node_modules + dist)
#                             on nestlab/node:local, one image for all five entry points
# Installs the Debian packages prometheus and busybox-static when missing.
# Uses the docker daemon of DOCKER_HOST (or the default socket).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. deploy/node/env.sh
DOCKER=${DOCKER:-docker}

say() { printf 'seed: %s\n' "$*" >&2; }

need_apt=()
command -v prometheus >/dev/null 2>&1 || need_apt+=(prometheus)
[ -x /bin/busybox ] || need_apt+=(busybox-static)
command -v nats-server >/dev/null 2>&1 || need_apt+=(nats-server)
if [ ${#need_apt[@]} -gt 0 ]; then
  say "installing Debian packages: ${need_apt[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${need_apt[@]}" >/dev/null
fi
[ -f services/lab/dist/cli.js ] || { say "no build: run deploy/setup.sh first"; exit 1; }

WORK=$(mktemp -d /tmp/nestlab-seed.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# Copies a dynamically linked binary and every library ldd names (same paths).
add_binary() { # rootfs binary [dest]
  local rootfs=$1 bin dest lib
  bin=$(readlink -f "$2")
  dest=${3:-$2}
  install -D -m 0755 "$bin" "$rootfs$dest"
  for lib in $(ldd "$bin" | grep -o '/[^ ]*' || true); do
    [ -e "$rootfs$lib" ] || install -D -m 0755 "$(readlink -f "$lib")" "$rootfs$lib"
  done
}

# /etc/passwd, /etc/group and a sticky /tmp: the minimum a non-root process needs.
base_fs() { # rootfs user uid
  local rootfs=$1 user=$2 uid=$3
  mkdir -p "$rootfs/etc" "$rootfs/tmp"
  chmod 1777 "$rootfs/tmp"
  printf 'root:x:0:0:root:/root:/sbin/nologin\n%s:x:%s:%s::/home/%s:/sbin/nologin\n' \
    "$user" "$uid" "$uid" "$user" >"$rootfs/etc/passwd"
  printf 'root:x:0:\n%s:x:%s:\n' "$user" "$uid" >"$rootfs/etc/group"
  [ "$uid" = 65534 ] || printf 'nobody:x:65534:65534::/nonexistent:/sbin/nologin\n' >>"$rootfs/etc/passwd"
  [ "$uid" = 65534 ] || printf 'nogroup:x:65534:\n' >>"$rootfs/etc/group"
}

add_busybox_wget() { # rootfs: a static busybox, reachable as wget (healthchecks)
  install -D -m 0755 /bin/busybox "$1/bin/busybox"
  ln -s busybox "$1/bin/wget"
}

import_image() { # rootfs tag --change...
  local rootfs=$1 tag=$2
  shift 2
  local changes=()
  for c in "$@"; do changes+=(--change "$c"); done
  tar --numeric-owner -C "$rootfs" -c . | "$DOCKER" import "${changes[@]}" - "$tag" >/dev/null
  say "imported $tag"
}

say "node base from $(command -v node) ($(node --version))"
R=$WORK/node
base_fs "$R" node 1000
add_binary "$R" "$(command -v node)" /usr/local/bin/node
mkdir -p "$R/data" && chown 1000:1000 "$R/data"
import_image "$R" nestlab/node:local \
  'ENV PATH=/usr/local/bin:/usr/bin:/bin' 'USER node' 'WORKDIR /app' \
  'ENTRYPOINT ["node"]'

say "nats from $(command -v nats-server) ($(nats-server --version))"
R=$WORK/nats
base_fs "$R" nats 1000
add_binary "$R" "$(command -v nats-server)" /usr/local/bin/nats-server
add_busybox_wget "$R"
import_image "$R" nestlab/nats:local \
  'ENV PATH=/usr/local/bin:/bin' 'USER nats' \
  'ENTRYPOINT ["nats-server"]' 'CMD ["-c", "/etc/nats/nats.conf"]'

say "prometheus from $(command -v prometheus)"
R=$WORK/prometheus
base_fs "$R" nobody 65534
add_binary "$R" "$(command -v prometheus)" /bin/prometheus
add_busybox_wget "$R"
mkdir -p "$R/prometheus" "$R/etc/prometheus"
chown 65534:65534 "$R/prometheus"
import_image "$R" nestlab/prometheus:local \
  'ENV PATH=/bin' 'USER 65534' 'WORKDIR /prometheus' \
  'ENTRYPOINT ["/bin/prometheus"]' 'CMD ["--config.file=/etc/prometheus/prometheus.yml"]'

# The app: every workspace's package.json + dist (+ lab's scenarios), the
# shared entry/healthcheck scripts, and node_modules without dev dependencies.
say "staging the built checkout"
A=$WORK/ctx/app
mkdir -p "$A"
tar -C "$ROOT" -c --exclude='node_modules/.cache' package.json package-lock.json node_modules |
  tar -C "$A" -x
tar -C "$ROOT" -c --exclude='src' --exclude='*.tsbuildinfo' --exclude='*.test.js' \
  --exclude='*.test.d.ts' --exclude='*.map' --exclude='tsconfig.json' \
  shared services deploy/docker/entry.mjs deploy/docker/healthcheck.mjs | tar -C "$A" -x
(cd "$A" && npm prune --omit=dev --offline --no-audit --no-fund >/dev/null 2>&1) ||
  say "npm prune --offline failed: keeping dev dependencies in the image"
rm -f "$A/package-lock.json"
say "app tree: $(du -sh "$A" | cut -f1)"
"$DOCKER" build -q -f deploy/docker/Dockerfile.prebuilt \
  --build-arg NODE_IMAGE=nestlab/node:local -t nestlab/services:local "$WORK/ctx" >/dev/null
say "built nestlab/services:local"
"$DOCKER" image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E '^nestlab/.*:local ' >&2
