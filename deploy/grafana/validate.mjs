#!/usr/bin/env node
// Static check of the Grafana provisioning (no Grafana needed):
//  - the datasource and dashboard provider YAML and the dashboard JSON parse;
//  - every panel and query names a provisioned datasource UID; panel ids are unique;
//  - the provider path is where docker-compose.yml mounts deploy/grafana/dashboards;
//  - every dashboard has the `stack` template variable (label_values of the
//    `stack` label, from a provisioned datasource) and every metric selector
//    filters on it (stack="$stack"), so several stacks can share one Prometheus;
//  - every metric a query uses is one the services export: registered in the
//    services' source (counter/gauge/histogram names), and, with
//    `--live URL...` (admin /metrics of a running fleet), present in a scrape.
// Prints one line per problem and a summary; exits 1 on any problem.
/* global fetch, AbortSignal -- Node globals */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const problems = [];
const problem = (msg) => problems.push(msg);

function readYaml(path) {
  try {
    return parseYaml(readFileSync(path, 'utf8'));
  } catch (e) {
    problem(`${relative(root, path)}: ${e.message}`);
    return {};
  }
}

const datasources = readYaml(join(here, 'provisioning/datasources/nestlab.yml')).datasources ?? [];
const uids = new Set(datasources.map((d) => d.uid));
if (!uids.has('nestlab-prometheus'))
  problem('datasources: no Prometheus datasource nestlab-prometheus');
const providers = readYaml(join(here, 'provisioning/dashboards/nestlab.yml')).providers ?? [];
const providerPath = providers[0]?.options?.path;

const compose = readYaml(join(root, 'docker-compose.yml'));
const grafana = compose.services?.grafana ?? {};
const mount = (grafana.volumes ?? []).find((v) =>
  String(v).startsWith('./deploy/grafana/dashboards:'),
);
if (!mount || String(mount).split(':')[1] !== providerPath)
  problem(`docker-compose.yml: grafana must mount ./deploy/grafana/dashboards at ${providerPath}`);

/** Metric names the services register, from their source (tests and fakes excluded). */
function sourceMetrics() {
  const names = new Set();
  const walk = (dir) => {
    for (const entry of readdirSync(dir)) {
      const p = join(dir, entry);
      if (statSync(p).isDirectory()) {
        if (!['testing', 'e2e', 'node_modules', 'dist'].includes(entry)) walk(p);
      } else if (p.endsWith('.ts') && !p.endsWith('.test.ts')) {
        const text = readFileSync(p, 'utf8');
        for (const m of text.matchAll(/\.(?:counter|gauge|histogram)\(\s*'(nestlab_[a-z0-9_]+)'/g))
          names.add(m[1]);
      }
    }
  };
  for (const svc of readdirSync(join(root, 'services'))) walk(join(root, 'services', svc, 'src'));
  walk(join(root, 'shared', 'service-kit', 'src'));
  return names;
}

async function liveMetrics(urls) {
  const names = new Set();
  for (const url of urls) {
    const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
    if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
    for (const m of (await res.text()).matchAll(/^# TYPE (\S+) \S+$/gm)) names.add(m[1]);
  }
  return names;
}

const base = (name, known) => {
  const m = /^(.*)_(bucket|sum|count)$/.exec(name);
  return m && known.has(m[1]) ? m[1] : name;
};

const STACK_SELECTOR = 'stack="$stack"';

/** The `stack` variable: a Prometheus label_values query on the `stack` label. */
function checkStackVariable(file, dash) {
  const v = (dash.templating?.list ?? []).find((x) => x.name === 'stack');
  const where = `dashboards/${file}: template variable stack`;
  if (!v) return problem(`${where} is missing`);
  if (v.type !== 'query') problem(`${where}: type ${v.type}, not query`);
  if (!uids.has(v.datasource?.uid)) problem(`${where}: unknown datasource ${v.datasource?.uid}`);
  const query = typeof v.query === 'string' ? v.query : v.query?.query;
  if (!/^label_values\((?:[^,]+,\s*)?stack\)$/.test(String(query ?? '').trim()))
    problem(`${where}: query ${JSON.stringify(query)} is not label_values(…stack)`);
}

const dashDir = join(here, 'dashboards');
const fromSource = sourceMetrics();
const liveArgs = process.argv.slice(process.argv.indexOf('--live') + 1);
const live = process.argv.includes('--live') ? await liveMetrics(liveArgs) : null;
let queries = 0;
const used = new Set();
for (const file of readdirSync(dashDir).filter((f) => f.endsWith('.json'))) {
  let dash;
  try {
    dash = JSON.parse(readFileSync(join(dashDir, file), 'utf8'));
  } catch (e) {
    problem(`dashboards/${file}: ${e.message}`);
    continue;
  }
  if (!dash.uid || !dash.title) problem(`dashboards/${file}: uid and title are required`);
  checkStackVariable(file, dash);
  const ids = new Set();
  for (const panel of dash.panels ?? []) {
    const where = `dashboards/${file}: panel ${JSON.stringify(panel.title)}`;
    if (ids.has(panel.id)) problem(`${where}: duplicate id ${panel.id}`);
    ids.add(panel.id);
    if (!uids.has(panel.datasource?.uid))
      problem(`${where}: unknown datasource ${panel.datasource?.uid}`);
    if (!panel.targets?.length) problem(`${where}: no queries`);
    for (const t of panel.targets ?? []) {
      queries += 1;
      if (!uids.has(t.datasource?.uid ?? panel.datasource?.uid))
        problem(`${where}: query ${t.refId} has unknown datasource`);
      const metrics = [...String(t.expr ?? '').matchAll(/\bnestlab_[a-z0-9_]+/g)].map((m) => m[0]);
      if (metrics.length === 0) problem(`${where}: query ${t.refId} uses no nestlab metric`);
      for (const m of String(t.expr ?? '').matchAll(/\b(nestlab_[a-z0-9_]+)(\{[^}]*\})?/g))
        if (!(m[2] ?? '').includes(STACK_SELECTOR))
          problem(`${where}: query ${t.refId}: ${m[1]} does not select ${STACK_SELECTOR}`);
      for (const raw of metrics) {
        const name = base(raw, fromSource);
        used.add(name);
        if (!fromSource.has(name)) problem(`${where}: ${raw} is not registered by any service`);
        else if (live && !live.has(name))
          problem(`${where}: ${raw} is not in the live /metrics scrape`);
      }
    }
  }
}

for (const p of problems) process.stdout.write(`grafana: ${p}\n`);
process.stdout.write(
  `grafana: ${queries} queries over ${used.size} metrics checked against ${fromSource.size} registered` +
    `${live ? ` and ${live.size} scraped` : ''}: ${problems.length} problem(s)\n`,
);
process.exit(problems.length === 0 ? 0 : 1);
