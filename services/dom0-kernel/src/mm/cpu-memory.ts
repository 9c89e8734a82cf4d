// CPU loads and stores of dom0. A PV guest's page tables hold machine frames,
// so every pseudo-physical access is translated page by page through the P2M
// copy; MMIO (BAR) accesses use machine addresses as mapped by the kernel.
// One batch becomes one MemAccess, RAM ops first in program order, then MMIO:
// posted RAM writes are ordered before the doorbell, as on real hardware. A
// batch of stores only (no loads) may be posted: published without waiting
// for a reply, like a CPU's stores and a PCIe posted write; NATS keeps one
// connection's messages in order and L0 applies them in arrival order.
import {
  PAGE_SIZE,
  pageOffset,
  pageSpans,
  toHex,
  type MachineAddr,
  type PseudoPhysAddr,
} from '@nestlab/addr';
import { joinData, MemAccess, type MemOp } from '@nestlab/protocol';
import type { SendOptions } from '@nestlab/service-kit';
import type { BusPort } from '../bus-port.js';
import { Dom0Error } from '../errors.js';
import type { P2mCopy } from './p2m-copy.js';

/** Keep each message well under NATS's default 1 MiB max_payload. */
const MAX_MESSAGE_BYTES = 512 * 1024;
const MAX_MERGED_OP = 64 * 1024;
const MAX_OPS = 4096;
export const DOM0_DOMID = 0;

/** A CPU store or load at a pseudo-physical address (a request's header, data, status). */
export interface CpuStore {
  readonly addr: PseudoPhysAddr;
  readonly bytes: Uint8Array;
}
export interface CpuLoad {
  readonly addr: PseudoPhysAddr;
  readonly len: number;
}

interface Op {
  op: 'read' | 'write';
  addr: bigint;
  len: number;
  parts: Uint8Array[];
}

export interface CommitOptions {
  ioIds?: string[];
  timeoutMs?: number;
  /** The batch serves several I/Os: its trace parent and the items (see Bus SendOptions). */
  batch?: SendOptions['batch'];
}

export class CpuMemory {
  constructor(
    private readonly bus: BusPort,
    private readonly p2m: () => P2mCopy,
  ) {}

  batch(): CpuBatch {
    return new CpuBatch(this.bus, this.p2m());
  }

  async read(addr: PseudoPhysAddr, len: number, opts: CommitOptions = {}): Promise<Uint8Array> {
    const b = this.batch();
    const h = b.read(addr, len);
    return (await b.commit(opts)).get(h);
  }

  async write(addr: PseudoPhysAddr, bytes: Uint8Array, opts: CommitOptions = {}): Promise<void> {
    await this.batch().write(addr, bytes).commit(opts);
  }
}

type Section = 'ram' | 'mmio' | 'tail';

export class CpuBatch {
  private readonly ram: Op[] = [];
  private readonly mmio: Op[] = [];
  /** RAM ops after the register accesses (loads that look at what a doorbell did). */
  private readonly tail: Op[] = [];
  private readonly reads: { section: Section; index: number; len: number }[] = [];
  /** Bytes each section loads so far: where the next load's result starts. */
  private readonly loaded: Record<Section, number> = { ram: 0, mmio: 0, tail: 0 };
  private afterMmio = false;

  constructor(
    private readonly bus: BusPort,
    private readonly p2m: P2mCopy,
  ) {}

  get empty(): boolean {
    return this.ram.length === 0 && this.mmio.length === 0 && this.tail.length === 0;
  }

  /** RAM ops from here on go after the register accesses, in program order. */
  thenAfterMmio(): this {
    this.afterMmio = true;
    return this;
  }

  private get ramOps(): Op[] {
    return this.afterMmio ? this.tail : this.ram;
  }

  get hasReads(): boolean {
    return this.reads.length > 0;
  }

  write(addr: PseudoPhysAddr, bytes: Uint8Array): this {
    const ops = this.ramOps;
    // Most stores (a descriptor, an avail entry, a page-aligned buffer) sit in one page.
    if (bytes.byteLength > 0 && pageOffset(addr) + bytes.byteLength <= PAGE_SIZE) {
      push(ops, 'write', this.machine(addr), bytes.byteLength, bytes);
      return this;
    }
    for (const s of pageSpans(addr, bytes.byteLength)) {
      push(ops, 'write', this.machine(s.addr), s.len, bytes.subarray(s.offset, s.offset + s.len));
    }
    return this;
  }

  /** Returns a handle for the result. */
  read(addr: PseudoPhysAddr, len: number): number {
    const ops = this.ramOps;
    const section = this.afterMmio ? 'tail' : 'ram';
    if (len > 0 && pageOffset(addr) + len <= PAGE_SIZE) push(ops, 'read', this.machine(addr), len);
    else for (const s of pageSpans(addr, len)) push(ops, 'read', this.machine(s.addr), s.len);
    return this.addRead(section, len);
  }

  mmioWrite(addr: MachineAddr, bytes: Uint8Array): this {
    this.mmio.push({ op: 'write', addr, len: bytes.byteLength, parts: [bytes] });
    return this;
  }

  mmioRead(addr: MachineAddr, len: number): number {
    this.mmio.push({ op: 'read', addr, len, parts: [] });
    return this.addRead('mmio', len);
  }

  private addRead(section: Section, len: number): number {
    this.reads.push({ section, index: this.loaded[section], len });
    this.loaded[section] += len;
    return this.reads.length - 1;
  }

  private machine(addr: PseudoPhysAddr): MachineAddr {
    const m = this.p2m.machineOf(addr);
    if (m === null) {
      const t = this.p2m.translate(addr); // the failed step says why
      throw new Dom0Error('P2M_MISSING', `CPU access to ${toHex(addr)}: ${t.step.reason}`);
    }
    return m;
  }

  /** The ops in message-sized chunks (each under the size and op-count limits). */
  private chunks(): Op[][] {
    const all = [...this.ram, ...this.mmio, ...this.tail];
    const out: Op[][] = [];
    let start = 0;
    while (start < all.length) {
      let end = start;
      let bytes = 0;
      while (end < all.length && end - start < MAX_OPS) {
        const next = all[end]!.len;
        if (end > start && bytes + next > MAX_MESSAGE_BYTES) break;
        bytes += next;
        end++;
      }
      out.push(all.slice(start, end));
      start = end;
    }
    return out;
  }

  /**
   * Posts a batch of stores (RAM and register writes) without waiting for a
   * reply. Nothing tells the driver if L0 refuses one: the I/O it served then
   * ends by its deadline, as a lost posted write would on hardware.
   */
  post(opts: CommitOptions = {}): void {
    if (this.reads.length > 0)
      throw new Dom0Error('BAD_REPLY', 'a batch with loads cannot be posted', { kind: 'internal' });
    for (const ops of this.chunks()) {
      const { head, stores } = message(ops, opts);
      this.bus.publish(MemAccess, head, {
        ...(stores.length > 0 ? { data: stores } : {}),
        ...(opts.batch ? { batch: opts.batch } : {}),
      });
    }
  }

  /** Sends the batch (in as few MemAccess messages as the size limit allows). */
  async commit(opts: CommitOptions = {}): Promise<BatchResult> {
    const { loaded } = this;
    const base = { ram: 0, mmio: loaded.ram, tail: loaded.ram + loaded.mmio };
    const chunks: Uint8Array[] = [];
    for (const ops of this.chunks()) chunks.push(await this.send(ops, opts));
    const data = joinData(chunks);
    return new BatchResult(
      this.reads.map((r) => base[r.section] + r.index),
      this.reads.map((r) => r.len),
      data,
    );
  }

  private async send(ops: Op[], opts: CommitOptions): Promise<Uint8Array> {
    const { head, stores } = message(ops, opts);
    const reply = await this.bus.request(MemAccess, head, {
      ...(stores.length > 0 ? { data: stores } : {}),
      ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
      ...(opts.batch ? { batch: opts.batch } : {}),
    });
    const want = readBytes(ops);
    if (reply.data.byteLength !== want) {
      throw new Dom0Error(
        'BAD_REPLY',
        `MemAccess returned ${reply.data.byteLength} bytes, expected ${want}`,
      );
    }
    return reply.data;
  }
}

function message(ops: Op[], opts: CommitOptions) {
  const mops: MemOp[] = ops.map((o) => ({ op: o.op, addr: toHex(o.addr), len: o.len }));
  // The stores' bytes in op order, copied once, into the frame itself.
  const stores = ops.filter((o) => o.op === 'write').flatMap((o) => o.parts);
  const head = {
    requester: { kind: 'cpu' as const, domain: DOM0_DOMID },
    ops: mops,
    afterDoorbell: 'drained' as const, // loads after a doorbell (a poll) see the drained queue
    ...(opts.ioIds && opts.ioIds.length > 0 ? { ioIds: opts.ioIds.slice(0, 4096) } : {}),
  };
  return { head, stores };
}

export class BatchResult {
  constructor(
    private readonly offsets: number[],
    private readonly lens: number[],
    private readonly data: Uint8Array,
  ) {}
  get(handle: number): Uint8Array {
    const off = this.offsets[handle];
    const len = this.lens[handle];
    if (off === undefined || len === undefined) throw new RangeError(`no read ${handle}`);
    return this.data.subarray(off, off + len);
  }
}

function push(
  ops: Op[],
  op: 'read' | 'write',
  addr: bigint,
  len: number,
  bytes?: Uint8Array,
): void {
  const last = ops[ops.length - 1];
  // Merge with the previous op when it continues it in machine space.
  if (
    last &&
    last.op === op &&
    last.addr + BigInt(last.len) === addr &&
    last.len + len <= MAX_MERGED_OP
  ) {
    last.len += len;
    if (bytes) last.parts.push(bytes);
    return;
  }
  ops.push({ op, addr, len, parts: bytes ? [bytes] : [] });
}

const readBytes = (ops: readonly Op[]) =>
  ops.reduce((n, o) => n + (o.op === 'read' ? o.len : 0), 0);
