// A fio-like job: keeps `iodepth` I/Os in flight until `ios` have ended.
// The plan (op and block of each I/O) depends only on the workload and its
// seed. Two I/Os never touch one block at the same time (the later waits),
// so "the last acknowledged write" of a block is always well defined.
import type { IoReport, Workload } from '@nestlab/protocol';
import { resetIoTraceBudget } from '@nestlab/telemetry';
import { SECTOR_SIZE } from '@nestlab/virtio';
import type { BlkIo, BlkOp } from '../block/blk-request.js';
import type { IoResult } from '../block/block-device.js';
import { below, mulberry32, unit } from './prng.js';
import { blockContent, type BlockModel } from './verify.js';

export interface PlannedIo {
  readonly op: BlkOp;
  readonly block: number;
}

export interface IoTarget {
  submit(io: BlkIo, deadlineMs: number): Promise<IoResult>;
}

export const MAX_TRACE_IDS = 64;

/** The deterministic sequence of I/Os of a workload. */
export function* plan(w: Workload): Generator<PlannedIo> {
  const blocks = Math.floor(w.spanBytes / w.bs);
  const next = mulberry32(w.seed);
  const written: number[] = [];
  const seen = new Set<number>();
  for (let i = 0; i < w.ios; i++) {
    let op: BlkOp;
    let block: number;
    switch (w.rw) {
      case 'read':
      case 'write':
        op = w.rw;
        block = i % blocks;
        break;
      case 'randread':
      case 'randwrite':
        op = w.rw === 'randread' ? 'read' : 'write';
        block = below(next, blocks);
        break;
      default:
        op = unit(next) < 0.5 ? 'read' : 'write';
        // randrw reads target blocks this job wrote; before any write, any block (zeros expected).
        block =
          op === 'read' && written.length > 0
            ? written[below(next, written.length)]!
            : below(next, blocks);
    }
    if (op === 'write' && !seen.has(block)) {
      seen.add(block);
      written.push(block);
    }
    yield { op, block };
  }
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return Math.round(sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!);
}

export async function runJob(
  w: Workload,
  target: IoTarget,
  model: BlockModel,
  idPrefix: string,
): Promise<IoReport> {
  const started = Date.now();
  // Every run gets the same trace budget (the first N I/Os of each job are traced).
  resetIoTraceBudget();
  const report: IoReport = {
    submitted: 0,
    completed: 0,
    verified: 0,
    corrupted: 0,
    failed: 0,
    errors: {},
    latencyUs: { p50: 0, p99: 0 },
    elapsedMs: 0,
    traceIds: [],
  };
  const latencies: number[] = [];
  const busy = new Map<number, Promise<void>>();
  const fail = (code: string) => {
    report.failed++;
    report.errors[code] = (report.errors[code] ?? 0) + 1;
  };

  async function one(i: number, p: PlannedIo): Promise<void> {
    const slotStart = Date.now();
    // The deadline runs from taking the slot, so a job ends within ~(ios/iodepth + 1) deadlines.
    while (busy.has(p.block)) {
      const left = w.deadlineMs - (Date.now() - slotStart);
      const freed = await Promise.race([
        busy.get(p.block)!.then(() => true),
        new Promise<false>((r) => setTimeout(() => r(false), Math.max(0, left)).unref()),
      ]);
      if (!freed) {
        report.submitted++;
        fail('TIMEOUT');
        return;
      }
    }
    let done!: () => void;
    busy.set(p.block, new Promise<void>((r) => (done = r)));
    try {
      const stamp =
        p.op === 'write'
          ? { seed: w.seed, block: p.block, generation: model.nextGeneration(p.block) }
          : null;
      const io: BlkIo = {
        id: `${idPrefix}-${i}`,
        op: p.op,
        sector: (BigInt(p.block) * BigInt(w.bs)) / BigInt(SECTOR_SIZE),
        len: w.bs,
        ...(stamp ? { data: blockContent(stamp, w.bs) } : {}),
      };
      report.submitted++;
      const r = await target.submit(io, Math.max(1, w.deadlineMs - (Date.now() - slotStart)));
      if (report.traceIds.length < MAX_TRACE_IDS) report.traceIds.push(r.traceId);
      if (!r.ok) {
        if (stamp) model.uncertainWrite(stamp);
        fail(r.code ?? 'INTERNAL');
        return;
      }
      report.completed++;
      latencies.push(r.latencyUs);
      if (stamp) {
        model.ackWrite(stamp);
        if (w.verify) report.verified++;
      } else if (w.verify) {
        if (r.data !== undefined && model.check(p.block, r.data)) report.verified++;
        else report.corrupted++;
      }
    } finally {
      busy.delete(p.block);
      done();
    }
  }

  const it = plan(w);
  await new Promise<void>((resolve) => {
    let issued = 0;
    let inFlight = 0;
    const launch = () => {
      while (inFlight < w.iodepth && issued < w.ios) {
        const p = it.next();
        if (p.done) break;
        const i = issued++;
        inFlight++;
        void one(i, p.value)
          .catch(() => fail('INTERNAL'))
          .finally(() => {
            inFlight--;
            if (inFlight === 0 && issued >= w.ios) resolve();
            else launch();
          });
      }
      if (inFlight === 0 && issued >= w.ios) resolve();
    };
    launch();
  });

  latencies.sort((a, b) => a - b);
  report.latencyUs = { p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99) };
  report.elapsedMs = Date.now() - started;
  return report;
}
