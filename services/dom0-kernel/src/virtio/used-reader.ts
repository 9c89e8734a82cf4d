// Reading the used ring (virtqueue_get_buf_ctx_split), in as few messages as
// possible: one read carries used.idx, the used elements of every chain in
// flight, the completion loads of the oldest ones and avail_event, all after
// the idx load (the virtio_rmb order), so what the idx says is done is
// visible. Only what the used ring reports is handed on.
import type { PseudoPhysAddr } from '@nestlab/addr';
import { decodeU16, decodeUsedElem } from '@nestlab/virtio';
import { Dom0Error } from '../errors.js';
import type { BatchResult, CommitOptions, CpuBatch, CpuMemory } from '../mm/cpu-memory.js';
import { u16, type DeviceErrorCode, type Harvested, type InFlight } from './ring-types.js';

/** Chains whose completion loads a harvest reads along with used.idx, at least. */
const MIN_SPECULATIVE_LOADS = 8;

export interface UsedAddrs {
  readonly usedIdx: PseudoPhysAddr;
  readonly availEvent: PseudoPhysAddr;
  usedElem(slot: number): PseudoPhysAddr;
}

/** The handles of one used-ring read, taken before it is sent. */
export interface UsedLook {
  readonly idx: number;
  readonly from: number;
  readonly window: number;
  readonly elems: number[];
  readonly loads: Map<number, number[]>;
  readonly ev: number;
}

export class UsedReader<T> {
  lastUsed = 0;
  /** avail_event as last read (EVENT_IDX); null before the first read. */
  availEvent: number | null = null;
  bogusUsed = 0;
  /** How many of the oldest chains a read loads ahead (what the last one found done). */
  private expectDone = MIN_SPECULATIVE_LOADS;

  constructor(
    private readonly mem: CpuMemory,
    private readonly size: number,
    private readonly addrs: UsedAddrs,
    private readonly eventIdx: boolean,
    private readonly inFlight: Map<number, InFlight<T>>,
    private readonly release: (descs: readonly number[]) => void,
    private readonly report: (code: DeviceErrorCode, detail: string) => void = () => undefined,
  ) {}

  /** Adds the loads of a used-ring read to `b`. */
  look(b: CpuBatch): UsedLook {
    const idx = b.read(this.addrs.usedIdx, 2);
    const from = this.lastUsed;
    const window = Math.max(1, Math.min(this.size, this.inFlight.size));
    const elems = this.readElems(b, from, window);
    // Completion loads for the oldest chains only (the device serves in avail order):
    // as many as the last read found done, so a big read does not fetch data not there yet.
    const loads = new Map<number, number[]>();
    let n = 0;
    for (const [head, f] of this.inFlight) {
      if (n++ >= this.expectDone) break;
      loads.set(
        head,
        f.req.loads.map((l) => b.read(l.addr, l.len)),
      );
    }
    const ev = this.eventIdx ? b.read(this.addrs.availEvent, 2) : -1;
    return { idx, from, window, elems, loads, ev };
  }

  /** Hands on what a used-ring read found; false when nothing was new. */
  async absorb(
    look: UsedLook,
    r: BatchResult,
    out: Harvested<T>[],
    opts: CommitOptions,
  ): Promise<boolean> {
    if (look.ev >= 0) this.availEvent = decodeU16(r.get(look.ev));
    if (look.from !== this.lastUsed) {
      throw new Dom0Error('BAD_REPLY', 'two used-ring reads overlapped', { kind: 'internal' });
    }
    const idx = decodeU16(r.get(look.idx));
    const n = u16(idx - this.lastUsed);
    if (n === 0) return false;
    if (n > this.size) {
      // Nothing in this ring can be trusted any more: the caller fails what is in flight and resets.
      const why = `used.idx jumped ${n} entries ahead of ${this.lastUsed} (queue size ${this.size})`;
      this.report('DEVICE_BROKEN', why);
      throw new Dom0Error('DEVICE_BROKEN', why);
    }
    const { window } = look;
    // More used than were in flight when the read went out: the rest in another read.
    const more = n > window ? await this.moreElems(window, n - window, opts) : [];
    const done: { f: InFlight<T>; len: number; got: Uint8Array[] | null }[] = [];
    for (let i = 0; i < n; i++) {
      const raw = i < window ? elemOf(r, look.elems[i]!) : more[i - window]!;
      const { id, len } = decodeUsedElem(raw);
      const f = id < this.size ? this.inFlight.get(id) : undefined;
      if (f === undefined) {
        this.bogusUsed++;
        this.report('USED_ID_NOT_POSTED', `used id ${id} names no chain in flight`);
        continue;
      }
      // The lie is counted; the I/O still ends per its status byte (Linux ignores used.len for blk).
      const writable = f.req.buffers.reduce((sum, b) => sum + (b.writable ? b.len : 0), 0);
      if (len > writable) {
        this.report(
          'USED_LEN_TOO_LONG',
          `used.len ${len} for chain ${id} with ${writable} writable bytes`,
        );
      }
      this.inFlight.delete(id);
      this.release(f.descs);
      // A copy: the reply may be a view into NATS's read buffer.
      const hs = look.loads.get(id);
      done.push({ f, len, got: hs ? hs.map((h) => new Uint8Array(r.get(h))) : null });
    }
    this.lastUsed = idx;
    this.expectDone = Math.min(this.size, Math.max(MIN_SPECULATIVE_LOADS, done.length));
    // Chains done beyond what was loaded ahead: their loads now, in one more read.
    const missing = done.filter((d) => d.got === null);
    if (missing.length > 0) {
      const b = this.mem.batch();
      const hs = missing.map((d) => d.f.req.loads.map((l) => b.read(l.addr, l.len)));
      const r2 = await b.commit(opts);
      missing.forEach((d, i) => (d.got = hs[i]!.map((h) => new Uint8Array(r2.get(h)))));
    }
    for (const d of done) out.push({ token: d.f.req.token, len: d.len, loads: d.got ?? [] });
    return true;
  }

  private readElems(b: CpuBatch, from: number, n: number): number[] {
    const handles: number[] = [];
    while (handles.length < n) {
      const slot = u16(from + handles.length) & (this.size - 1);
      const take = Math.min(n - handles.length, this.size - slot);
      const h = b.read(this.addrs.usedElem(slot), 8 * take);
      for (let i = 0; i < take; i++) handles.push(h * 0x10000 + i);
    }
    return handles;
  }

  private async moreElems(skip: number, n: number, opts: CommitOptions): Promise<Uint8Array[]> {
    const b = this.mem.batch();
    const hs = this.readElems(b, u16(this.lastUsed + skip), n);
    const r = await b.commit(opts);
    return hs.map((h) => elemOf(r, h));
  }
}

/** A used element out of a multi-element read: handle = read * 0x10000 + index. */
function elemOf(r: BatchResult, h: number): Uint8Array {
  const read = Math.floor(h / 0x10000);
  const i = h % 0x10000;
  return r.get(read).subarray(8 * i, 8 * i + 8);
}
