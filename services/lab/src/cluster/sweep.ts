// `nestlab sweep`: one work item per seed on the cluster's queue, then the
// results collected from the results store until every seed has exactly one.
// The sweep id comes from the arguments, so the same sweep started again
// after an interruption finds the results already reported and publishes
// only the seeds that have neither a result nor an item still queued.
import { createHash } from 'node:crypto';
import { sweepResult, type SweepItem, type SweepResult } from '@nestlab/protocol';
import {
  ITEMS_STREAM,
  itemSubject,
  openWorkQueue,
  resultKey,
  type WorkQueue,
} from './work-queue.js';

export interface SweepSpec {
  kind: SweepItem['kind'];
  id: string;
  from: number;
  to: number;
  ios?: number;
}

export interface SweepOptions extends SweepSpec {
  urls: string;
  progress: (line: string) => void;
  /** How often the results store is read (ms). */
  pollMs?: number;
  ackWaitMs?: number;
}

export interface SweepSummary {
  sweep: string;
  kind: SweepSpec['kind'];
  id: string;
  seeds: { from: number; to: number };
  total: number;
  passed: number;
  failed: number;
  /** Results this run found already reported (a resumed sweep). */
  resumed: number;
  /** Items this run put on the queue. */
  published: number;
  results: SweepResult[];
  failures: { seed: number; verdict: string; rerun: string }[];
  elapsedMs: number;
}

/** The sweep's id: readable, stable for the same arguments, a valid subject token. */
export function sweepId(s: SweepSpec): string {
  const h = createHash('sha256')
    .update(JSON.stringify([s.kind, s.id, s.from, s.to, s.ios ?? null]))
    .digest('hex')
    .slice(0, 12);
  return `${s.id.slice(0, 40)}-${h}`;
}

/** How to run one seed of the sweep on this machine alone. */
export function rerunCommand(s: SweepSpec, seed: number): string {
  const ios = s.ios === undefined ? '' : ` --ios ${s.ios}`;
  return s.kind === 'scenario'
    ? `nestlab run ${s.id} --seed ${seed}${ios} --private`
    : `nestlab experiment ${s.id} --seed ${seed}${ios}`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runSweep(opts: SweepOptions): Promise<SweepSummary> {
  const started = Date.now();
  const sweep = sweepId(opts);
  const total = opts.to - opts.from + 1;
  const q = await openWorkQueue({
    urls: opts.urls,
    name: `nestlab-sweep@${sweep}`,
    ...(opts.ackWaitMs ? { ackWaitMs: opts.ackWaitMs } : {}),
  });
  try {
    const results = new Map<number, SweepResult>();
    await retrying('reading results', () => collect(q, sweep, results, opts));
    const resumed = results.size;
    let published = 0;
    for (let seed = opts.from; seed <= opts.to; seed++) {
      if (results.has(seed)) continue;
      if (await retrying('reading the queue', () => stillQueued(q, sweep, seed))) continue;
      const item: SweepItem = {
        sweep,
        kind: opts.kind,
        id: opts.id,
        seed,
        ...(opts.ios === undefined ? {} : { ios: opts.ios }),
      };
      // The msgID makes a retried publish (its ack lost in a failover) land once.
      await retrying(`publishing seed ${seed}`, () =>
        q.js.publish(itemSubject(sweep, seed), JSON.stringify(item), {
          msgID: resultKey(sweep, seed),
        }),
      );
      published++;
    }
    opts.progress(
      `sweep ${sweep}: ${total} seeds, ${resumed} already reported, ${published} published`,
    );
    let lastNote = Date.now();
    while (results.size < total) {
      await sleep(opts.pollMs ?? 500);
      const before = results.size;
      await collect(q, sweep, results, opts).catch((err: unknown) =>
        opts.progress(`reading results: ${(err as Error).message} (retrying)`),
      );
      if (results.size !== before || Date.now() - lastNote > 15_000) {
        const failed = [...results.values()].filter((r) => !r.pass).length;
        opts.progress(`sweep ${sweep}: ${results.size}/${total} reported, ${failed} failed`);
        lastNote = Date.now();
      }
    }
    return summarize(opts, sweep, results, resumed, published, started);
  } finally {
    await q.close();
  }
}

/** True when the seed's item is still on the queue (published by an earlier, interrupted run). */
async function stillQueued(q: WorkQueue, sweep: string, seed: number): Promise<boolean> {
  const m = await q.jsm.streams.getMessage(ITEMS_STREAM, {
    last_by_subj: itemSubject(sweep, seed),
  });
  return m !== null;
}

/** How long the sweep rides out a cluster that is electing new leaders after losing a node. */
const FAILOVER_MS = 60_000;

async function retrying<T>(what: string, fn: () => Promise<T>): Promise<T> {
  const until = Date.now() + FAILOVER_MS;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > until) throw new Error(`${what}: ${(err as Error).message}`);
      await sleep(500);
    }
  }
}

/** Adds every result of this sweep not seen yet; one per seed, a second for a seed is ignored. */
async function collect(
  q: WorkQueue,
  sweep: string,
  into: Map<number, SweepResult>,
  opts: SweepOptions,
): Promise<void> {
  const keys = await q.results.keys(`${sweep}.*`);
  const fresh: string[] = [];
  for await (const k of keys) {
    const seed = Number(k.slice(sweep.length + 1));
    if (Number.isInteger(seed) && seed >= opts.from && seed <= opts.to && !into.has(seed))
      fresh.push(k);
  }
  for (const k of fresh) {
    const e = await q.results.get(k);
    if (!e) continue;
    const r = sweepResult.parse(e.json(), `result ${k}`);
    if (r.sweep !== sweep || into.has(r.seed)) continue;
    into.set(r.seed, r);
    opts.progress(
      `seed ${r.seed}: ${r.pass ? 'PASS' : 'FAIL'} ${r.verdict} (${r.stack}, ${r.elapsedMs} ms${r.deliveries > 1 ? `, delivery ${r.deliveries}` : ''})`,
    );
  }
}

function summarize(
  spec: SweepSpec,
  sweep: string,
  results: Map<number, SweepResult>,
  resumed: number,
  published: number,
  started: number,
): SweepSummary {
  const list = [...results.values()].sort((a, b) => a.seed - b.seed);
  const failed = list.filter((r) => !r.pass);
  return {
    sweep,
    kind: spec.kind,
    id: spec.id,
    seeds: { from: spec.from, to: spec.to },
    total: list.length,
    passed: list.length - failed.length,
    failed: failed.length,
    resumed,
    published,
    results: list,
    failures: failed.map((r) => ({
      seed: r.seed,
      verdict: r.error ? `${r.error.code}: ${r.error.message}` : r.verdict,
      rerun: rerunCommand(spec, r.seed),
    })),
    elapsedMs: Date.now() - started,
  };
}

/** The summary for people: one line per seed, then the failures and how to rerun each. */
export function formatSummary(s: SweepSummary): string {
  const lines = [
    `sweep ${s.sweep}: ${s.kind} ${s.id}, seeds ${s.seeds.from}..${s.seeds.to}: ${s.passed} passed, ${s.failed} failed (${(s.elapsedMs / 1000).toFixed(1)} s)`,
  ];
  for (const r of s.results)
    lines.push(
      `  seed ${r.seed}: ${r.pass ? 'PASS' : 'FAIL'} ${r.verdict}  [${r.worker}/${r.stack}]`,
    );
  if (s.failures.length > 0) {
    lines.push('failed seeds, to rerun locally:');
    for (const f of s.failures) lines.push(`  ${f.rerun}    # ${f.verdict}`);
  }
  return `${lines.join('\n')}\n`;
}
