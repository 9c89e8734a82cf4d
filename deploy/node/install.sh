#!/usr/bin/env bash
# Gives this checkout a Node.js that meets package.json's engines (deploy/setup.sh runs it):
#  - the system's `node` when it is new enough: nothing to install, and any
#    project-local Node left from before is removed so that it is the one used;
#  - else the release pinned in deploy/node/version, installed into .nestlab/node/
#    from the npm registry (the package node-linux-<arch> carries the official
#    binary and headers), with the npm that package.json's packageManager names,
#    so that npm itself, and `npm ci`'s engine checks, run on that Node too.
# The download uses the system's npm (`npm pack` checks the registry's integrity hash).
# deploy/node/env.sh puts .nestlab/node/bin first on PATH for every later step.
set -euo pipefail
cd "$(dirname "$0")/../.."
dest=.nestlab/node

say() { printf 'setup: %s\n' "$*" >&2; }
die() {
  say "$*"
  exit 1
}
version_ge() { [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1)" = "$2" ]; }
version_of() { "$@" --version 2>/dev/null | sed 's/^v//'; }

min=$(sed -n 's/.*"node": *">=\([0-9.]*\)".*/\1/p' package.json | head -n1)
npm_pin=$(sed -n 's/.*"packageManager": *"npm@\([0-9.]*\)".*/\1/p' package.json)
pin=$(tr -d '[:space:]' <deploy/node/version)
[ -n "$min" ] && [ -n "$npm_pin" ] && [ -n "$pin" ] ||
  die "cannot read engines.node (>=X.Y.Z) and packageManager (npm@X.Y.Z) from package.json, or deploy/node/version"
version_ge "$pin" "$min" || die "deploy/node/version ($pin) does not meet engines.node >=$min"

# PATH without the project's Node, whoever sourced env.sh before.
sys_path=$(printf '%s' "$PATH" | tr ':' '\n' | grep -vxF "$PWD/$dest/bin" | paste -sd: -)
sys_node=$(PATH=$sys_path version_of node || true)

if [ -n "$sys_node" ] && version_ge "$sys_node" "$min"; then
  [ ! -e "$dest" ] || { say "system node $sys_node meets >=$min: removing $dest" && rm -rf "$dest"; }
  say "node $sys_node (system)"
  exit 0
fi
if [ "$(version_of "$dest/bin/node")" = "$pin" ] && [ "$(version_of "$dest/bin/npm")" = "$npm_pin" ]; then
  say "node $pin, npm $npm_pin ($dest)"
  exit 0
fi

case "$(uname -m)" in
  x86_64 | amd64) arch=x64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) die "no Node $pin package for $(uname -m) on the npm registry: install Node >=$min yourself" ;;
esac
PATH=$sys_path command -v npm >/dev/null 2>&1 || die "node ${sys_node:-missing} is older than >=$min and there is no npm to fetch Node $pin with"

say "system node ${sys_node:-missing} is older than >=$min: installing node $pin + npm $npm_pin into $dest"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp" "$dest.new"' EXIT
(cd "$tmp" && PATH=$sys_path npm pack --silent "node-linux-$arch@$pin" "npm@$npm_pin" >/dev/null)
rm -rf "$dest.new"
mkdir -p "$dest.new/lib/node_modules/npm"
tar -xzf "$tmp/node-linux-$arch-$pin.tgz" -C "$dest.new" --strip-components=1 --no-same-owner
tar -xzf "$tmp/npm-$npm_pin.tgz" -C "$dest.new/lib/node_modules/npm" --strip-components=1 --no-same-owner
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$dest.new/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$dest.new/bin/npx"
got=$(version_of "$dest.new/bin/node")
[ "$got" = "$pin" ] || die "the installed node reports '${got:-nothing}', not $pin"
rm -rf "$dest"
mv "$dest.new" "$dest"
say "node $pin, npm $(version_of "$dest/bin/npm") ($dest)"
