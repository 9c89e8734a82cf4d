# Sourced by the project's scripts (setup, CI, compose test, image seeding):
# puts the project's Node first on PATH when deploy/setup.sh installed one in
# .nestlab/node (because the system's is older than package.json's engines), so
# `node`, `npm`, `npx` and every `#!/usr/bin/env node` script run on it.
# Does nothing otherwise.
_nestlab_node="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/.nestlab/node"
if [ -x "$_nestlab_node/bin/node" ]; then
  case ":$PATH:" in
    *":$_nestlab_node/bin:"*) ;;
    *) PATH="$_nestlab_node/bin:$PATH" ;;
  esac
  export PATH
  # setup.sh builds native addons (usocket) against this Node's headers.
  export NESTLAB_NODE_DIR="$_nestlab_node"
fi
unset _nestlab_node
