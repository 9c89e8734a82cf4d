// What `nestlab bench --stacks` reports: K independent stacks on one
// nats-server at once, and how throughput and cost grow with K on this
// machine. Pure: stacks.ts measures, this derives and prints.

/** One stack of a K-stack run. */
export interface StackShare {
  /** The stack token: its subjects are nestlab.<stack>.… */
  stack: string;
  /** The oracle's verdict on the stack's probe run (run concurrently with the other stacks'). */
  oracle: { outcome: string; pass: boolean; ios: number; dmaRecords: number };
  /** The stack's own IOPS in the measured jobs (dom0's report, median of the repetitions). */
  iops: number;
  /** RSS of the stack's four services after the measured jobs; null where /proc is not there. */
  rssBytes: number | null;
  /** The same per service (those that could be read). */
  rssBytesByService: Record<string, number>;
}

export interface StacksRun {
  stacks: number;
  /** All stacks' completed I/Os over the wall time from the first start to the last end (median). */
  aggregateIops: number;
  /** aggregateIops over the K = 1 run's; null without a K = 1 run. */
  scaling: number | null;
  /** CPU µs per I/O of every process of every stack and nats-server, summed (median). */
  cpuUsPerIo: number | null;
  /** The same, per service summed over the stacks, and nats-server. */
  cpuUsPerIoByService: Record<string, number> | null;
  perStack: StackShare[];
  /** I/Os per stack per repetition, repetitions, I/Os that failed in all. */
  ios: number;
  reps: number;
  failed: number;
}

export interface StacksReport {
  scenario: string;
  iodepth: number;
  traced: false;
  runs: StacksRun[];
}

/** Fills in each run's scaling against the K = 1 run. */
export function withScaling(runs: readonly StacksRun[]): StacksRun[] {
  const one = runs.find((r) => r.stacks === 1)?.aggregateIops;
  return runs.map((r) => ({
    ...r,
    scaling: one && one > 0 ? Math.round((r.aggregateIops / one) * 1000) / 1000 : null,
  }));
}

const mb = (b: number | null) => (b === null ? '-' : `${Math.round(b / 1e6)}`);

export function formatStacks(s: StacksReport): string[] {
  const lines = [
    '',
    `stacks: K independent stacks on one nats-server at once, ${s.scenario} at iodepth ${s.iodepth}, untraced`,
    `${'K'.padStart(3)} ${'IOPS'.padStart(7)} ${'x K=1'.padStart(6)} ${'CPU/IO'.padStart(7)}  ` +
      'per stack: IOPS, RSS MB, oracle',
  ];
  for (const r of s.runs) {
    const shares = r.perStack
      .map(
        (p) => `${p.stack} ${p.iops} ${mb(p.rssBytes)} ${p.oracle.pass ? 'ok' : p.oracle.outcome}`,
      )
      .join('; ');
    lines.push(
      `${String(r.stacks).padStart(3)} ${String(r.aggregateIops).padStart(7)} ` +
        `${(r.scaling === null ? '-' : r.scaling.toFixed(2)).padStart(6)} ` +
        `${(r.cpuUsPerIo === null ? '-' : `${r.cpuUsPerIo}us`).padStart(7)}  ${shares}` +
        (r.failed > 0 ? `  ${r.failed} I/Os FAILED` : ''),
    );
  }
  lines.push('CPU per I/O (us) by service, summed over the stacks:');
  for (const r of s.runs) {
    const by = Object.entries(r.cpuUsPerIoByService ?? {});
    lines.push(`  K = ${r.stacks}: ${by.map(([k, v]) => `${k} ${v}`).join(', ') || '-'}`);
  }
  return lines;
}
