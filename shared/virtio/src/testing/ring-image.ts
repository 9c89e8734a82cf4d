// A split ring laid out in test memory, driven from the driver's side
// (as rust-vmm mock.rs MockSplitQueue does). Device tests use it to build
// valid and corrupt rings; driver tests use it to read back what a device did.
import { busAddr } from '@nestlab/addr';
import type { BusAddr } from '@nestlab/addr';
import { VRING_DESC_F } from '../constants.js';
import type { SplitQueue } from '../split-queue.js';
import {
  availEventAddr,
  availFlagsAddr,
  availIdxAddr,
  availRingAddr,
  descAddr,
  usedElemAddr,
  usedEventAddr,
  usedIdxAddr,
} from '../split-queue.js';
import {
  DESC_SIZE,
  decodeU16,
  decodeUsedElem,
  encodeDesc,
  encodeU16,
  legacyRingLayout,
  splitRingLayout,
} from '../split-ring-layout.js';
import type { VringUsedElem } from '../split-ring-layout.js';
import type { WritableMemory } from './sparse-test-memory.js';

export interface TestMemory extends WritableMemory {
  readSync(addr: bigint, len: number): Uint8Array;
}

export interface RingImageOptions {
  size: number;
  /** Where the legacy-style layout starts when desc/avail/used are not given (default 0x10000). */
  base?: bigint;
  desc?: bigint;
  avail?: bigint;
  used?: bigint;
}

/** A buffer a test puts in a chain; addresses are raw numbers for brevity. */
export interface BufferSpec {
  addr: bigint;
  len: number;
  writable?: boolean;
}

/** A raw descriptor, written as given (for corrupt rings). */
export interface RawDesc {
  addr: bigint;
  len: number;
  flags?: number;
  next?: number;
}

export class RingImage {
  readonly queue: SplitQueue;
  /** The driver's shadow of avail.idx (free-running u16). */
  availIdx = 0;
  private nextFree = 0;
  private readonly shadow = new Map<number, Required<RawDesc>>();

  constructor(
    readonly mem: TestMemory,
    options: RingImageOptions,
  ) {
    const legacy = legacyRingLayout(options.size);
    const base = options.base ?? 0x10000n;
    this.queue = {
      size: options.size,
      desc: busAddr(options.desc ?? base),
      avail: busAddr(options.avail ?? base + BigInt(legacy.availOffset)),
      used: busAddr(options.used ?? base + BigInt(legacy.usedOffset)),
    };
    // Zero all three areas so the image starts as a reset ring.
    const l = splitRingLayout(options.size);
    mem.write(this.queue.desc, new Uint8Array(l.desc.bytes));
    mem.write(this.queue.avail, new Uint8Array(l.avail.bytes));
    mem.write(this.queue.used, new Uint8Array(l.used.bytes));
  }

  get size(): number {
    return this.queue.size;
  }

  /** Writes descriptor `index` of the descriptor table verbatim. */
  writeDesc(index: number, d: RawDesc): void {
    const full = { flags: 0, next: 0, ...d };
    this.shadow.set(index, full);
    this.mem.write(descAddr(this.queue, index), encodeDesc({ ...full, addr: busAddr(full.addr) }));
  }

  /** Changes some fields of a descriptor written earlier. */
  patchDesc(index: number, patch: Partial<RawDesc>): void {
    const old = this.shadow.get(index) ?? { addr: 0n, len: 0, flags: 0, next: 0 };
    this.writeDesc(index, { ...old, ...patch });
  }

  /** Writes an indirect table verbatim at `addr`. */
  writeTable(addr: bigint, entries: readonly RawDesc[]): void {
    const bytes = new Uint8Array(entries.length * DESC_SIZE);
    entries.forEach((e, i) =>
      bytes.set(encodeDesc({ flags: 0, next: 0, ...e, addr: busAddr(e.addr) }), i * DESC_SIZE),
    );
    this.mem.write(busAddr(addr), bytes);
  }

  private alloc(count: number, indices?: readonly number[]): number[] {
    if (indices !== undefined) {
      if (indices.length !== count)
        throw new Error(`${indices.length} indices for ${count} buffers`);
      return [...indices];
    }
    return Array.from({ length: count }, () => {
      const i = this.nextFree;
      this.nextFree = (this.nextFree + 1) % this.size;
      return i;
    });
  }

  /**
   * Writes a direct chain into free descriptors (or the given indices),
   * linked in order with NEXT; publishes it unless publish is false.
   * Returns the head index.
   */
  addChain(
    bufs: readonly BufferSpec[],
    opts: { indices?: number[]; publish?: boolean } = {},
  ): number {
    const idx = this.alloc(bufs.length, opts.indices);
    bufs.forEach((b, i) => {
      const last = i === bufs.length - 1;
      const flags = (b.writable ? VRING_DESC_F.WRITE : 0) | (last ? 0 : VRING_DESC_F.NEXT);
      this.writeDesc(idx[i] ?? 0, {
        addr: b.addr,
        len: b.len,
        flags,
        next: last ? 0 : (idx[i + 1] ?? 0),
      });
    });
    const head = idx[0] ?? 0;
    if (opts.publish ?? true) this.publish(head);
    return head;
  }

  /**
   * Writes `bufs` as an indirect table at `tableAddr` and a chain of
   * `opts.direct` buffers (default none) ending in the INDIRECT descriptor.
   */
  addIndirectChain(
    bufs: readonly BufferSpec[],
    tableAddr: bigint,
    opts: { direct?: BufferSpec[]; publish?: boolean } = {},
  ): number {
    this.writeTable(
      tableAddr,
      bufs.map((b, i) => {
        const last = i === bufs.length - 1;
        const flags = (b.writable ? VRING_DESC_F.WRITE : 0) | (last ? 0 : VRING_DESC_F.NEXT);
        return { addr: b.addr, len: b.len, flags, next: last ? 0 : i + 1 };
      }),
    );
    const direct = opts.direct ?? [];
    const idx = this.alloc(direct.length + 1);
    direct.forEach((b, i) => {
      const flags = (b.writable ? VRING_DESC_F.WRITE : 0) | VRING_DESC_F.NEXT;
      this.writeDesc(idx[i] ?? 0, { addr: b.addr, len: b.len, flags, next: idx[i + 1] ?? 0 });
    });
    this.writeDesc(idx[direct.length] ?? 0, {
      addr: tableAddr,
      len: bufs.length * DESC_SIZE,
      flags: VRING_DESC_F.INDIRECT,
    });
    const head = idx[0] ?? 0;
    if (opts.publish ?? true) this.publish(head);
    return head;
  }

  /** avail.ring[availIdx % size] = head, then avail.idx++ (driver order, spec "Supplying Buffers to The Device"). */
  publish(head: number): void {
    this.setAvailRingEntry(this.availIdx, head);
    this.setAvailIdx((this.availIdx + 1) & 0xffff);
  }

  setAvailRingEntry(idx: number, head: number): void {
    this.mem.write(availRingAddr(this.queue, idx), encodeU16(head));
  }

  /** Writes avail.idx (and the shadow) without touching the ring: use to corrupt it. */
  setAvailIdx(idx: number): void {
    this.availIdx = idx & 0xffff;
    this.mem.write(availIdxAddr(this.queue), encodeU16(this.availIdx));
  }

  setAvailFlags(flags: number): void {
    this.mem.write(availFlagsAddr(this.queue), encodeU16(flags));
  }

  setUsedEvent(idx: number): void {
    this.mem.write(usedEventAddr(this.queue), encodeU16(idx));
  }

  /** used.idx as the device last wrote it. */
  usedIdx(): number {
    return decodeU16(this.mem.readSync(usedIdxAddr(this.queue), 2));
  }

  /** used.ring entry for free-running used index `idx`. */
  usedElem(idx: number): VringUsedElem {
    return decodeUsedElem(this.mem.readSync(usedElemAddr(this.queue, idx), 8));
  }

  availEvent(): number {
    return decodeU16(this.mem.readSync(availEventAddr(this.queue), 2));
  }

  descAddr(index: number): BusAddr {
    return descAddr(this.queue, index);
  }
}
