// `nestlab bench --profile DIR`: the untraced fleet runs under V8's sampling
// profiler (node --cpu-prof); each service writes a .cpuprofile into DIR when
// it stops (open them in Chrome DevTools or speedscope for a flame graph),
// and the report summarizes where each service's busy time went.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Sample every 500 us: fine enough for a hot path, cheap enough to keep the run representative. */
export const PROFILE_INTERVAL_US = 500;

export function profileNodeArgs(dir: string): string[] {
  return ['--cpu-prof', `--cpu-prof-dir=${dir}`, `--cpu-prof-interval=${PROFILE_INTERVAL_US}`];
}

export interface HotFunction {
  fn: string;
  /** file:line, relative to the repo (or the package, for dependencies). */
  where: string;
  /** Share of the service's busy samples spent in the function itself. */
  selfPct: number;
}

export interface ServiceProfile {
  file: string;
  /** Samples in which the service was not idle, and the share of those in GC. */
  busySamples: number;
  gcPct: number;
  /** Busy share by where the code lives: our packages, dependencies, node itself. */
  byOrigin: Record<string, number>;
  top: HotFunction[];
}

interface CpuProfile {
  nodes: {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
  }[];
  samples: number[];
}

const IDLE = new Set(['(idle)', '(root)']);

function origin(url: string): string {
  if (url.includes('/node_modules/')) {
    const pkg = url.split('/node_modules/').pop()!.split('/');
    return pkg[0]!.startsWith('@') ? `${pkg[0]}/${pkg[1]}` : pkg[0]!;
  }
  const ours = /\/(services|shared)\/([^/]+)\//.exec(url);
  if (ours) return `nestlab ${ours[2]}`;
  if (url.startsWith('node:')) return 'node';
  return url === '' ? 'native/V8' : 'other';
}

function where(url: string, line: number): string {
  const rel = url.includes('/node_modules/')
    ? url.split('/node_modules/').pop()!
    : (/\/((?:services|shared)\/.*)$/.exec(url)?.[1] ?? url);
  return rel === '' ? '' : `${rel}:${line + 1}`;
}

/** The summary of one .cpuprofile: the top self-time functions of the busy samples. */
export function summarizeProfile(file: string, text: string, top = 8): ServiceProfile {
  const p = JSON.parse(text) as CpuProfile;
  const frames = new Map(p.nodes.map((n) => [n.id, n.callFrame]));
  const counts = new Map<number, number>();
  for (const id of p.samples) counts.set(id, (counts.get(id) ?? 0) + 1);
  const self = new Map<string, { fn: string; where: string; n: number }>();
  const byOrigin: Record<string, number> = {};
  let busy = 0;
  let gc = 0;
  for (const [id, n] of counts) {
    const f = frames.get(id);
    if (!f || IDLE.has(f.functionName)) continue;
    busy += n;
    if (f.functionName === '(garbage collector)') gc += n;
    const o = f.functionName.startsWith('(') ? 'native/V8' : origin(f.url);
    byOrigin[o] = (byOrigin[o] ?? 0) + n;
    const key = `${f.functionName}@${f.url}:${f.lineNumber}`;
    const e = self.get(key) ?? {
      fn: f.functionName || '(anonymous)',
      where: where(f.url, f.lineNumber),
      n: 0,
    };
    e.n += n;
    self.set(key, e);
  }
  const pct = (n: number) => (busy === 0 ? 0 : Math.round((n / busy) * 1000) / 10);
  return {
    file,
    busySamples: busy,
    gcPct: pct(gc),
    byOrigin: Object.fromEntries(
      Object.entries(byOrigin)
        .sort((a, b) => b[1] - a[1])
        .map(([k, n]) => [k, pct(n)]),
    ),
    top: [...self.values()]
      .sort((a, b) => b.n - a.n)
      .slice(0, top)
      .map((e) => ({ fn: e.fn, where: e.where, selfPct: pct(e.n) })),
  };
}

/** Summaries of the profiles the services wrote into `dir`, by service (matched on pid). */
export function readProfiles(
  dir: string,
  pids: ReadonlyMap<number, string>,
): Record<string, ServiceProfile> {
  const out: Record<string, ServiceProfile> = {};
  for (const name of readdirSync(dir)) {
    if (!name.endsWith('.cpuprofile')) continue;
    // node names them CPU.<date>.<time>.<pid>.<tid>.<seq>.cpuprofile; thread 0 is
    // the main thread, where the service's handlers run (workers write their own).
    const [, , , pid, tid] = name.split('.');
    const service = pids.get(Number(pid));
    if (!service || tid !== '0') continue;
    out[service] = summarizeProfile(join(dir, name), readFileSync(join(dir, name), 'utf8'));
  }
  return out;
}
