#!/usr/bin/env bash
# Runs a command on the project's Node (see env.sh): the npm scripts use it, e.g.
#   bash deploy/node/run.sh node shared/testing/bin/run-tests.mjs
. "$(dirname "$0")/env.sh"
exec "$@"
