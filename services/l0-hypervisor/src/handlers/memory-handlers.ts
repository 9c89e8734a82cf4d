// MemAccess: CPU loads and stores at machine addresses, in order. RAM goes
// through the memslots after the ownership check Xen's page tables imply
// (CpuFrames); addresses in a BAR are register accesses (docs/ARCHITECTURE.md, one write, step 5).
//
// Ordering: messages take effect in the order they arrive. RAM ops and
// register reads run synchronously; a register write that starts device work
// (the doorbell) does not hold up later messages when it is the message's
// last op — stores then doorbell is a posted write, as on PCIe. Only ops that
// follow a register write inside one message wait for it, and later messages
// queue behind those. For a doorbell that wait is the queue draining, and the
// sender must say it counts on that (MemAccess afterDoorbell: 'drained').
// This is L0's one place where a message waits for device work.
import { trace } from '@opentelemetry/api';
import { PAGE_SHIFT, pageSpans, parseHex, toHex } from '@nestlab/addr';
import type { MachineAddr } from '@nestlab/addr';
import { CpuFrames as CpuFramesMsg, MemAccess } from '@nestlab/protocol';
import type { MemOp, RequestOf, Requester } from '@nestlab/protocol';
import type { ServiceContext } from '@nestlab/service-kit';
import { ATTR } from '@nestlab/telemetry';
import { L0Error } from '../errors.js';
import type { L0Service } from '../l0-service.js';
import type { CpuFrames } from '../memory/cpu-frames.js';
import type { MachineMemory } from '../memory/machine-memory.js';
import type { L0Metrics } from '../metrics.js';
import type { PciBus } from '../pci/bus.js';
import { noteChainTraces } from '../virtio/chain-traces.js';

export function registerMemoryHandlers(
  ctx: ServiceContext,
  m: L0Service,
  metrics: L0Metrics,
): void {
  ctx.bus.handle(MemAccess, async ({ head, data }) => {
    if (head.ioIds?.length) trace.getActiveSpan()?.setAttribute(ATTR.ioId, head.ioIds.join(','));
    try {
      const out = await cpuAccess(
        { mem: m.mem, frames: m.frames, bus: m.pci },
        head.requester,
        head.ops,
        data,
        head.afterDoorbell,
      );
      return { body: { readLens: out.readLens }, data: out.data };
    } catch (err) {
      if (err instanceof L0Error) metrics.cpuDenied.inc({ code: err.code });
      throw err;
    }
  });

  ctx.bus.handle(CpuFramesMsg, async ({ head }) => ({
    body: { frames: await m.setFrames(head.domain, head.ranges) },
  }));
}

interface CpuAccessDeps {
  readonly mem: MachineMemory;
  readonly frames: CpuFrames;
  readonly bus: PciBus;
}

interface CpuAccessResult {
  /** Length of each read op, in op order (writes have no entry). */
  readLens: number[];
  /** The loads' bytes in op order, copied into the reply frame as they are (no joined copy). */
  data: readonly Uint8Array[];
}

interface Run {
  readonly deps: CpuAccessDeps;
  readonly requester: Requester;
  readonly ops: readonly MemOp[];
  readonly data: Uint8Array;
  readonly afterDoorbell: RequestOf<typeof MemAccess>['afterDoorbell'];
  readonly reads: Uint8Array[];
  /** Register writes still settling (their errors still count for the reply). */
  readonly pending: Promise<void>[];
  next: number;
  at: number;
}

function cpuAccess(
  deps: CpuAccessDeps,
  requester: Requester,
  ops: readonly MemOp[],
  data: Uint8Array,
  afterDoorbell?: 'drained',
): Promise<CpuAccessResult> {
  const writeBytes = ops.reduce((n, op) => n + (op.op === 'write' ? op.len : 0), 0);
  if (writeBytes !== data.byteLength) {
    return Promise.reject(
      new L0Error(
        'DATA_LENGTH_MISMATCH',
        `write ops need ${writeBytes} data bytes, the message carries ${data.byteLength}`,
      ),
    );
  }
  noteChainTraces((token) => deps.bus.byToken(token)?.dev);
  const run: Run = {
    deps,
    requester,
    ops,
    data,
    afterDoorbell,
    reads: [],
    pending: [],
    next: 0,
    at: 0,
  };
  const held = deps.mem.cpuHold;
  return held === null ? proceed(run) : held.then(() => proceed(run));
}

/** Runs ops synchronously until one must be waited for; then holds later messages. */
function proceed(run: Run): Promise<CpuAccessResult> {
  try {
    while (run.next < run.ops.length) {
      const i = run.next++;
      const wait = step(run, i);
      if (wait !== undefined && run.next < run.ops.length) {
        // Ops after a register write see what it did (a drained queue): wait, and make
        // every later message wait too, so arrival order still holds.
        const rest = wait.then(() => proceed(run));
        const hold = rest.then(
          () => undefined,
          () => undefined,
        );
        run.deps.mem.cpuHold = hold;
        void hold.then(() => {
          if (run.deps.mem.cpuHold === hold) run.deps.mem.cpuHold = null;
        });
        return rest;
      }
      if (wait !== undefined) run.pending.push(wait);
    }
  } catch (err) {
    return Promise.reject(err);
  }
  const result = () => ({
    readLens: run.reads.map((r) => r.byteLength),
    data: run.reads,
  });
  if (run.pending.length === 0) return Promise.resolve(result());
  return Promise.all(run.pending).then(result);
}

/** One op; returns a promise only for a register write that has work in flight. */
function step(run: Run, i: number): Promise<void> | undefined {
  const op = run.ops[i]!;
  const addr = parseAddr(op.addr, i);
  const payload = op.op === 'write' ? run.data.subarray(run.at, (run.at += op.len)) : undefined;
  try {
    // Device memory (a card's ring BAR) is plain memory behind the bus: no register side effects.
    const devMem = run.deps.bus.memoryAt(addr, op.len);
    if (devMem) {
      if (payload) devMem.set(payload);
      else run.reads.push(devMem.slice());
      return undefined;
    }
    const bar = run.deps.bus.barAt(addr, op.len);
    if (bar) {
      // MMIO: any domain may touch BARs (fixed decision); Xen decides who maps them.
      if (!payload) {
        run.reads.push(bar.fn.transport.read(bar.offset, op.len));
        return undefined;
      }
      const last = i === run.ops.length - 1;
      if (
        !last &&
        run.afterDoorbell !== 'drained' &&
        bar.fn.transport.isDoorbell(bar.offset, op.len)
      ) {
        throw new L0Error(
          'ORDER_UNDECLARED',
          `ops follow the doorbell; declare afterDoorbell: 'drained' to wait for the queue to drain`,
        );
      }
      return bar.fn.transport.write(bar.offset, payload).catch((err: unknown) => {
        throw withIndex(err, i);
      });
    }
    ram(run.deps, run.requester, addr, op.len, payload, run.reads);
    return undefined;
  } catch (err) {
    throw withIndex(err, i);
  }
}

function withIndex(err: unknown, i: number): unknown {
  return err instanceof L0Error
    ? new L0Error(err.code, `op ${i}: ${err.message}`, { kind: err.kind })
    : err;
}

function parseAddr(text: string, i: number): MachineAddr {
  try {
    return parseHex('machine', text);
  } catch (cause) {
    throw new L0Error('MEMORY_UNREACHABLE', `op ${i}: ${String(cause)}`, { kind: 'input' });
  }
}

const PAGE_SHIFT_N = BigInt(PAGE_SHIFT);
const ADDR_LIMIT = 1n << 64n;

function ram(
  deps: CpuAccessDeps,
  requester: Requester,
  addr: MachineAddr,
  len: number,
  payload: Uint8Array | undefined,
  reads: Uint8Array[],
): void {
  if (deps.bus.overlapsBar(addr, len)) {
    throw new L0Error('MEMORY_UNREACHABLE', `${toHex(addr)}+${len} straddles a BAR edge`);
  }
  const end = addr + BigInt(len);
  if (end > ADDR_LIMIT) {
    throw new L0Error('MEMORY_UNREACHABLE', `${toHex(addr)}+${len} wraps 2^64`);
  }
  // One memslot must hold the whole op (slots are GiB-sized; an op is at most 1 MiB), and
  // every page is checked first, so a refused op has no partial effect. hostOf, not
  // translate: a recorded step (two hex strings) per op would be made and dropped.
  const host = deps.mem.memslots.hostOf(addr, len);
  if (host === null) {
    const first = firstUnreachable(deps, addr, len);
    throw new L0Error('MEMORY_UNREACHABLE', `${toHex(first)} is neither RAM nor a BAR`);
  }
  if (requester.kind === 'cpu') {
    const first = Number(addr >> PAGE_SHIFT_N);
    const last = Number((end - 1n) >> PAGE_SHIFT_N);
    if (!deps.frames.allows(requester.domain, first, last)) {
      throw new L0Error(
        'ACCESS_DENIED',
        `dom${requester.domain} may not touch machine frames 0x${first.toString(16)}..0x${last.toString(16)}`,
      );
    }
  }
  if (payload) deps.mem.ram.write(host, payload);
  else reads.push(deps.mem.ram.read(host, len));
}

/** The first page of an op that no memslot holds (for the error message). */
function firstUnreachable(deps: CpuAccessDeps, addr: MachineAddr, len: number): bigint {
  for (const s of pageSpans(addr, len)) {
    if (!deps.mem.memslots.translate(s.addr, s.len).ok) return s.addr;
  }
  return addr;
}
