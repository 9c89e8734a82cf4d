#!/usr/bin/env node
// Static check of the `collector` profile (no collector binary or image needed):
//  - config.yaml parses; every component a pipeline or the service names is
//    defined, and every defined one is used;
//  - the traces pipeline exports to both Jaeger and the console, the console
//    exporter as uncompressed JSON (the console refuses protobuf);
//  - docker-compose.yml mounts this file where the collector's --config reads it,
//    under the `collector` profile.
// Prints one line per problem and a summary; exits 1 on any problem.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';

const here = dirname(fileURLToPath(import.meta.url));
const problems = [];
const problem = (msg) => problems.push(msg);

const config = parseYaml(readFileSync(join(here, 'config.yaml'), 'utf8')) ?? {};
const KINDS = ['receivers', 'processors', 'exporters'];
const used = new Set();
for (const [name, p] of Object.entries(config.service?.pipelines ?? {})) {
  for (const kind of KINDS) {
    if (kind !== 'processors' && !(p[kind] ?? []).length) problem(`pipeline ${name}: no ${kind}`);
    for (const c of p[kind] ?? []) {
      used.add(`${kind}/${c}`);
      if (!config[kind]?.[c]) problem(`pipeline ${name}: ${kind} ${c} is not defined`);
    }
  }
}
for (const e of config.service?.extensions ?? []) {
  used.add(`extensions/${e}`);
  if (!config.extensions?.[e]) problem(`service: extension ${e} is not defined`);
}
for (const kind of [...KINDS, 'extensions'])
  for (const c of Object.keys(config[kind] ?? {}))
    if (!used.has(`${kind}/${c}`)) problem(`${kind} ${c} is defined but never used`);

const traces = config.service?.pipelines?.traces;
const exporters = (traces?.exporters ?? []).map((e) => [e, config.exporters?.[e] ?? {}]);
const to = (host) => exporters.find(([, e]) => String(e.endpoint).includes(`//${host}:`));
if (!to('jaeger')) problem('traces pipeline: no exporter to jaeger');
const consoleExp = to('console');
if (!consoleExp) problem('traces pipeline: no exporter to the console');
else if (consoleExp[1].encoding !== 'json' || consoleExp[1].compression !== 'none')
  problem(`exporter ${consoleExp[0]}: the console takes uncompressed JSON only`);

const compose = parseYaml(readFileSync(join(here, '..', '..', 'docker-compose.yml'), 'utf8'));
const svc = compose.services?.['otel-collector'];
if (!svc) problem('docker-compose.yml: no otel-collector service');
else {
  if (!(svc.profiles ?? []).includes('collector'))
    problem('docker-compose.yml: otel-collector is not under the collector profile');
  const path = /^--config=(.+)$/.exec(
    (svc.command ?? []).find((a) => a.startsWith('--config=')),
  )?.[1];
  const mount = (svc.volumes ?? []).find((v) =>
    String(v).startsWith('./deploy/otel-collector/config.yaml:'),
  );
  if (!path || String(mount).split(':')[1] !== path)
    problem(`docker-compose.yml: otel-collector must mount config.yaml at its --config (${path})`);
}

for (const p of problems) process.stdout.write(`otel-collector: ${p}\n`);
process.stdout.write(
  `otel-collector: ${used.size} components checked: ${problems.length} problem(s)\n`,
);
process.exit(problems.length === 0 ? 0 : 1);
