#!/usr/bin/env bash
# End-to-end test of the compose files on this machine, with no registry and no
# traffic off loopback (`npm run test:compose`):
#  1. installs docker.io + docker-compose when missing; starts a private dockerd
#     (own data/exec root and socket, no bridge, no iptables) unless one answers;
#  2. validates docker-compose.yml with each profile (core, observability,
#     collector, both), with deploy/compose.ports.yml and with
#     deploy/compose.airgap.yml; checks image pins, the Grafana provisioning
#     (incl. the stack variable) and the collector config;
#  3. seeds the local images (deploy/seed-images.sh) and brings up the
#     air-gapped fleet: nats, the four services, console, prometheus;
#  4. checks health, the default scenario's run and traces in the console, NATS
#     permissions, `nestlab matrix` against the composed fleet, no permission
#     violations by the services, Prometheus scraping (the services and itself),
#     non-root containers, log rotation and memory limits on every container,
#     the images' Node (the project's, per package.json's engines);
#  5. `down -v`, stops the dockerd it started (also on failure) and prints
#     `N passed, N failed`.
# Env: NESTLAB_NATS_PORT (4222), NESTLAB_STACK (s1), KEEP_WORK=1 keeps the temp dir.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
[ -f services/lab/dist/cli.js ] || bash deploy/setup.sh
# node, npm and the CLI below run on the project's Node, the one the images get.
. deploy/node/env.sh
export NESTLAB_STACK=${NESTLAB_STACK:-s1}
export NESTLAB_NATS_PORT=${NESTLAB_NATS_PORT:-4222}
export NESTLAB_NATS_MONITOR_PORT=${NESTLAB_NATS_MONITOR_PORT:-8222}
# One run of the default scenario at start; the matrix must not race a repeat.
export NESTLAB_SCENARIO=${NESTLAB_SCENARIO:-xen-pv-dom0-dma-api}
export NESTLAB_SCENARIO_EVERY=3600
PROJECT=nestlab-compose-test
# prometheus is in the observability profile; it is named in `up` (as every
# service), the profile makes logs/down see it as well.
COMPOSE=(docker-compose -p "$PROJECT" --profile observability -f docker-compose.yml
  -f deploy/compose.airgap.yml)
SERVICES=(nats l0-hypervisor xen dom0-kernel iommu console prometheus)
NATS_URL="nats://127.0.0.1:$NESTLAB_NATS_PORT"
CONSOLE=http://127.0.0.1:7700
WORK=$(mktemp -d /tmp/nestlab-compose.XXXXXX)
STARTED=$(date +%s)
PASSED=0
FAILED=0
DOCKERD_PID=""
COMPOSE_UP=0

say() { printf '[compose-test %3ss] %s\n' "$(($(date +%s) - STARTED))" "$*"; }
pass() { PASSED=$((PASSED + 1)); say "PASS $*"; }
fail() { FAILED=$((FAILED + 1)); say "FAIL $*"; }
# check "name" command...: one counted check, its output kept in $WORK/<n>.log.
check() {
  local name=$1 log
  shift
  log="$WORK/check-$((PASSED + FAILED + 1)).log"
  if "$@" >"$log" 2>&1; then pass "$name"; else
    fail "$name"
    tail -n 25 "$log" | sed 's/^/    | /'
  fi
}

# fetch_to URL FILE: HTTP GET with node (no curl on a fresh machine); fails on non-2xx.
fetch_to() {
  node -e 'fetch(process.argv[1], { signal: AbortSignal.timeout(10000) })
    .then(async (r) => { if (!r.ok) process.exit(1); require("fs").writeFileSync(process.argv[2], await r.text()); })
    .catch(() => process.exit(1))' "$1" "$2"
}

collect_logs() {
  say "container logs in $WORK/logs"
  mkdir -p "$WORK/logs"
  for s in "${SERVICES[@]}"; do "${COMPOSE[@]}" logs --no-color "$s" >"$WORK/logs/$s.log" 2>&1; done
}

cleanup() {
  local rc=$?
  if [ "$COMPOSE_UP" = 1 ]; then
    collect_logs
    say "tearing down"
    "${COMPOSE[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
  fi
  if [ -n "$DOCKERD_PID" ]; then
    say "stopping dockerd (pid $DOCKERD_PID)"
    kill "$DOCKERD_PID" 2>/dev/null
    for _ in $(seq 1 40); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$DOCKERD_PID" 2>/dev/null || true
    # dockerd leaves its netns bind mount behind; unmount it so the dir can go.
    awk -v d="$WORK/docker/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r |
      while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
  fi
  if [ "${KEEP_WORK:-0}" = 1 ] || [ "$FAILED" -gt 0 ]; then
    say "kept $WORK (logs)"
    rm -rf "$WORK/docker" 2>/dev/null || true
  else
    rm -rf "$WORK" 2>/dev/null || true
  fi
  echo "$PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ] && [ "$rc" -eq 0 ] || exit 1
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 1. tools and a docker daemon -------------------------------------------
need_apt=()
command -v docker-compose >/dev/null 2>&1 || need_apt+=(docker-compose)
command -v dockerd >/dev/null 2>&1 || need_apt+=(docker.io)
if [ ${#need_apt[@]} -gt 0 ]; then
  say "installing ${need_apt[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
    "${need_apt[@]}" >/dev/null || { fail "apt-get install ${need_apt[*]}"; exit 1; }
fi

if docker info >/dev/null 2>&1; then
  say "using the running docker daemon (${DOCKER_HOST:-default socket})"
else
  mkdir -p "$WORK/docker/data" "$WORK/docker/exec"
  export DOCKER_HOST="unix://$WORK/docker/docker.sock"
  say "starting a private dockerd on $DOCKER_HOST"
  dockerd --data-root "$WORK/docker/data" --exec-root "$WORK/docker/exec" \
    --pidfile "$WORK/docker/dockerd.pid" -H "$DOCKER_HOST" \
    --bridge=none --iptables=false --ip6tables=false >"$WORK/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
fi
check "docker daemon answers" docker info
[ "$FAILED" -eq 0 ] || exit 1

# --- 2. static checks -------------------------------------------------------
pins_match() { # every pin in deploy/images.env is the ${VAR:-default} in docker-compose.yml
  local line var val
  while IFS= read -r line; do
    case $line in '#'* | '') continue ;; esac
    var=${line%%=*} val=${line#*=}
    grep -qF "\${$var:-$val}" docker-compose.yml || { echo "$var=$val differs"; return 1; }
  done <deploy/images.env
}
check "image pins: deploy/images.env = docker-compose.yml defaults" pins_match
for profiles in "" "--profile observability" "--profile collector" \
  "--profile observability --profile collector"; do
  # shellcheck disable=SC2086 # the profile flags split on purpose
  check "docker-compose config: docker-compose.yml ${profiles:-(core)}" \
    docker-compose -f docker-compose.yml $profiles config -q
  # shellcheck disable=SC2086
  check "docker-compose config: + deploy/compose.ports.yml ${profiles:-(core)}" \
    docker-compose -f docker-compose.yml -f deploy/compose.ports.yml $profiles config -q
done
core_without_profiles() { # the services that start with no profile named
  docker-compose -f docker-compose.yml config | node -e '
    const y = require("yaml").parse(require("fs").readFileSync(0, "utf8"));
    const core = Object.entries(y.services).filter(([, s]) => !(s.profiles ?? []).length)
      .map(([name]) => name).sort().join(" ");
    console.log(`core: ${core}`);
    process.exit(core === "console dom0-kernel iommu l0-hypervisor nats xen" ? 0 : 1);'
}
check "no profile = the core fleet (nats, four services, console)" core_without_profiles
check "docker-compose config: + deploy/compose.airgap.yml" "${COMPOSE[@]}" config -q
check "grafana provisioning (static, stack variable)" node deploy/grafana/validate.mjs
check "otel collector config (static; its image cannot be seeded here)" \
  node deploy/otel-collector/validate.mjs

ports_free() {
  node -e '
    const net = require("node:net");
    const ports = process.argv.slice(1).map(Number);
    let busy = [];
    Promise.all(ports.map((p) => new Promise((r) => {
      const s = net.createServer().once("error", () => { busy.push(p); r(); })
        .listen(p, "127.0.0.1", () => s.close(r));
    }))).then(() => { if (busy.length) { console.log("in use:", busy.join(" ")); process.exit(1); } });
  ' "$NESTLAB_NATS_PORT" "$NESTLAB_NATS_MONITOR_PORT" 7700 7701 7702 7703 7704 9090
}
check "loopback ports free (nats, admin 7700-7704, prometheus 9090)" ports_free

# --- 3. images and the air-gapped fleet -------------------------------------
say "seeding local images (docker import; no registry)"
check "seed images" bash deploy/seed-images.sh
"${COMPOSE[@]}" down -v --remove-orphans >/dev/null 2>&1 # leftovers of a killed run
say "docker-compose up ${SERVICES[*]}"
COMPOSE_UP=1
check "docker-compose up -d (air-gapped)" "${COMPOSE[@]}" up -d --no-build "${SERVICES[@]}"

all_healthy() {
  local deadline=$(($(date +%s) + 150)) s id st
  while [ "$(date +%s)" -lt "$deadline" ]; do
    local bad=()
    for s in "${SERVICES[@]}"; do
      id=$("${COMPOSE[@]}" ps -q "$s" 2>/dev/null)
      st=$([ -n "$id" ] && docker inspect -f '{{.State.Health.Status}}' "$id" 2>/dev/null)
      [ "$st" = healthy ] || bad+=("$s:${st:-missing}")
    done
    [ ${#bad[@]} -eq 0 ] && return 0
    sleep 2
  done
  echo "not healthy: ${bad[*]}"
  return 1
}
check "all containers healthy" all_healthy

# --- 4. behaviour -----------------------------------------------------------
# The console's start-up run of NESTLAB_SCENARIO: it must run and report; whether
# it went as expected is the matrix's strict check below (the first run on a
# cold, just-started fleet is the one most exposed to I/O deadlines).
default_scenario_ran() {
  local deadline=$(($(date +%s) + 180))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    fetch_to "$CONSOLE/api/scenarios" "$WORK/scenarios.json" &&
      node -e '
        const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
        const s = j.scenarios.find((x) => x.id === process.argv[2]);
        if (!s?.lastRun) process.exit(3);
        const r = s.lastRun;
        console.log(`${s.id}: ${r.outcome} (${r.pass ? "as expected" : "NOT as expected"}),` +
          ` ios ${r.ios.verified}/${r.ios.submitted} verified, ${r.ios.failed} failed, dma ${r.dma.total}`);
        process.exit(0);
      ' "$WORK/scenarios.json" "$NESTLAB_SCENARIO"
    [ $? -eq 0 ] && return 0
    sleep 2
  done
  echo "no run of $NESTLAB_SCENARIO reported by the console"
  return 1
}
check "console ran the default scenario ($NESTLAB_SCENARIO) at start and reported it" default_scenario_ran
sed 's/^/    /' "$WORK"/check-"$((PASSED + FAILED))".log

trace_reached_console() { # an I/O trace through dom0, l0 (and xen) in the console's store
  local id
  fetch_to "$CONSOLE/api/traces?limit=1000" "$WORK/traces.json" || return 1
  id=$(node -e '
    const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const t = j.traces.find((x) => x.rootName === "dom0.io" &&
      ["dom0-kernel", "l0-hypervisor"].every((s) => x.services.includes(s)));
    console.error(`${j.traces.length} traces, ${j.stats?.spans} spans`);
    if (!t) process.exit(1);
    console.error(`trace ${t.traceId}: ${t.spans} spans from ${t.services.join(", ")}`);
    console.log(t.traceId);
  ' "$WORK/traces.json") || return 1
  node services/lab/dist/cli.js trace "$id" --json --console "$CONSOLE" >"$WORK/trace.json" &&
    node -e '
      const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
      const spans = j.spans ?? j.trace?.spans ?? [];
      console.log(`nestlab trace: ${spans.length} spans`);
      process.exit(spans.length > 1 ? 0 : 1);
    ' "$WORK/trace.json"
}
check "default scenario's I/O traces reached the console (nestlab trace reads one)" trace_reached_console
sed -n '1,3p' "$WORK"/check-"$((PASSED + FAILED))".log | sed 's/^/    /'

check "NATS permissions: xen denied on l0 subjects, allowed on its own; bad password refused" \
  env NATS_URL="$NATS_URL" NESTLAB_XEN_PASS="${NESTLAB_XEN_PASS:-xen-dev}" \
  node deploy/compose/nats-permissions.mjs

run_matrix() {
  NATS_USER=lab NATS_PASS="${NESTLAB_LAB_PASS:-lab-dev}" NESTLAB_RUNS="$WORK/runs" \
    timeout 600 node services/lab/dist/cli.js matrix --json --nats-url "$NATS_URL" \
    --stack "$NESTLAB_STACK" >"$WORK/matrix.json" 2>"$WORK/matrix.err"
  local rc=$?
  node -e '
    const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    for (const r of j.scenarios)
      console.log(`${r.pass ? "PASS" : "FAIL"} ${r.scenario}: expected ${r.expected}, observed ${r.outcome}`);
    const bad = j.scenarios.filter((r) => !r.pass);
    console.log(`${j.scenarios.length} scenarios, ${bad.length} not as expected`);
    process.exit(j.scenarios.length > 0 && bad.length === 0 ? 0 : 1);
  ' "$WORK/matrix.json" || { tail -n 5 "$WORK/matrix.err"; return 1; }
  return $rc
}
say "running nestlab matrix against the composed fleet"
check "nestlab matrix --json against the composed fleet: every scenario as expected" run_matrix
sed 's/^/    /' "$WORK"/check-"$((PASSED + FAILED))".log | grep -E '^    (PASS|FAIL|[0-9])' || true

no_service_violations() { # the probe's own violations aside, nobody was denied
  "${COMPOSE[@]}" logs --no-color nats >"$WORK/nats.log" 2>&1
  grep -i 'violation' "$WORK/nats.log" | grep -v 'nestlab-permission-probe' && return 1
  grep -c 'nestlab-permission-probe' "$WORK/nats.log" | sed 's/^/probe violations logged: /'
}
check "no permission violations by the services during the runs (nats log)" no_service_violations

prometheus_scrapes() {
  fetch_to 'http://127.0.0.1:9090/api/v1/query?query=up%7Bjob%3D%22nestlab%22%7D' "$WORK/up.json" &&
    node -e '
      const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).data.result;
      console.log(r.map((x) => `${x.metric.service}=${x.value[1]}`).join(" "));
      process.exit(r.length === 4 && r.every((x) => x.value[1] === "1") ? 0 : 1);
    ' "$WORK/up.json"
}
wait_for() { # seconds command...
  local deadline=$(($(date +%s) + $1))
  shift
  until "$@"; do [ "$(date +%s)" -lt "$deadline" ] || return 1; sleep 2; done
}
check "prometheus scrapes the four services (up == 1)" wait_for 30 prometheus_scrapes
prometheus_scrapes_itself() {
  fetch_to 'http://127.0.0.1:9090/api/v1/query?query=up%7Bjob%3D%22prometheus%22%7D' "$WORK/up-self.json" &&
    node -e '
      const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).data.result;
      process.exit(r.length === 1 && r[0].value[1] === "1" ? 0 : 1);
    ' "$WORK/up-self.json"
}
check "prometheus scrapes itself (up{job=prometheus} == 1)" wait_for 30 prometheus_scrapes_itself
check "grafana dashboard metrics all present in the live /metrics" node deploy/grafana/validate.mjs \
  --live http://127.0.0.1:7701/metrics http://127.0.0.1:7702/metrics \
  http://127.0.0.1:7703/metrics http://127.0.0.1:7704/metrics

non_root() { # the uid of each container's main process, read from the host's /proc
  local s id pid uid bad=0
  for s in "${SERVICES[@]}"; do
    id=$("${COMPOSE[@]}" ps -q "$s")
    pid=$(docker inspect -f '{{.State.Pid}}' "$id")
    uid=$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")
    echo "$s: uid $uid (image user $(docker inspect -f '{{.Config.User}}' "$id"))"
    [ "$uid" != 0 ] || bad=1
  done
  return $bad
}
check "every container runs as non-root" non_root
sed 's/^/    /' "$WORK"/check-"$((PASSED + FAILED))".log

rotated_and_limited() { # json-file logs with max-size/max-file, a memory limit
  local s id conf bad=0
  for s in "${SERVICES[@]}"; do
    id=$("${COMPOSE[@]}" ps -q "$s")
    conf=$(docker inspect -f '{{.HostConfig.LogConfig.Type}} max-size={{index .HostConfig.LogConfig.Config "max-size"}} max-file={{index .HostConfig.LogConfig.Config "max-file"}} memory={{.HostConfig.Memory}} nanocpus={{.HostConfig.NanoCpus}}' "$id")
    echo "$s: $conf"
    case $conf in "json-file max-size=10m max-file=3 memory="[1-9]*" nanocpus="[1-9]*) ;; *) bad=1 ;; esac
  done
  return $bad
}
check "every container: json-file logs rotated (10m x 3), memory and CPU limits" rotated_and_limited
sed 's/^/    /' "$WORK"/check-"$((PASSED + FAILED))".log

image_node() { # the app image's node is this checkout's (the engines' line)
  local want got
  want=$(node --version)
  got=$(docker run --rm --network none --entrypoint node nestlab/services:local --version)
  echo "nestlab/services:local node $got, project node $want"
  [ "$got" = "$want" ] && node -e '
    const min = require("./package.json").engines.node.replace(">=", "").split(".").map(Number);
    const v = process.argv[1].slice(1).split(".").map(Number);
    const cmp = v[0] - min[0] || v[1] - min[1] || v[2] - min[2];
    process.exit(cmp >= 0 ? 0 : 1);' "$got"
}
check "the services' image runs the project's Node (meets engines)" image_node
sed 's/^/    /' "$WORK"/check-"$((PASSED + FAILED))".log

say "image sizes:"
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E '^nestlab/' | sed 's/^/    /'

# --- 5. teardown ------------------------------------------------------------
[ "$FAILED" -eq 0 ] || collect_logs
check "docker-compose down -v" "${COMPOSE[@]}" down -v --remove-orphans
COMPOSE_UP=0
