// A byte-addressed, page-granular memory for tests: pages exist once written
// or mapped; reading a page that does not exist fails like DMA to nowhere.
import { PAGE_SHIFT, PAGE_SIZE, toHex } from '@nestlab/addr';
import type { BusAddr } from '@nestlab/addr';
import type { RingMemory } from '../ring-memory.js';

export interface WritableMemory {
  write(addr: BusAddr, bytes: Uint8Array): void;
}

export interface SparseTestMemoryOptions {
  /** Reads of pages never written return zeros instead of failing (default false). */
  zeroFill?: boolean;
}

export class SparseTestMemory implements RingMemory, WritableMemory {
  private readonly pages = new Map<number, Uint8Array>();
  /** Every read, in order; lets tests check how much a walker touched. */
  readonly reads: { addr: BusAddr; len: number }[] = [];
  /** When set, a read overlapping [addr, addr+len) rejects with this error. */
  failRange: { addr: bigint; len: number; error?: Error } | undefined;

  constructor(private readonly options: SparseTestMemoryOptions = {}) {}

  private static split(
    addr: bigint,
    len: number,
    fn: (page: number, off: number, at: number, n: number) => void,
  ): void {
    let done = 0;
    while (done < len) {
      const a = addr + BigInt(done);
      const page = Number(a >> BigInt(PAGE_SHIFT));
      const off = Number(a & BigInt(PAGE_SIZE - 1));
      const n = Math.min(PAGE_SIZE - off, len - done);
      fn(page, off, done, n);
      done += n;
    }
  }

  /** Makes [addr, addr+len) exist (zero-filled) without writing it. */
  map(addr: bigint, len: number): void {
    SparseTestMemory.split(addr, len, (page) => {
      if (!this.pages.has(page)) this.pages.set(page, new Uint8Array(PAGE_SIZE));
    });
  }

  /** Removes every page overlapping [addr, addr+len). */
  unmap(addr: bigint, len: number): void {
    SparseTestMemory.split(addr, len, (page) => this.pages.delete(page));
  }

  write(addr: BusAddr | bigint, bytes: Uint8Array): void {
    SparseTestMemory.split(addr, bytes.byteLength, (page, off, at, n) => {
      let p = this.pages.get(page);
      if (p === undefined) {
        p = new Uint8Array(PAGE_SIZE);
        this.pages.set(page, p);
      }
      p.set(bytes.subarray(at, at + n), off);
    });
  }

  /** Synchronous read for test assertions; throws on a missing page unless zeroFill. */
  readSync(addr: bigint, len: number): Uint8Array {
    const out = new Uint8Array(len);
    SparseTestMemory.split(addr, len, (page, off, at, n) => {
      const p = this.pages.get(page);
      if (p === undefined) {
        if (this.options.zeroFill) return;
        throw new Error(`no memory at ${toHex(BigInt(page) << BigInt(PAGE_SHIFT))}`);
      }
      out.set(p.subarray(off, off + n), at);
    });
    return out;
  }

  read(addr: BusAddr, len: number): Promise<Uint8Array> {
    this.reads.push({ addr, len });
    const f = this.failRange;
    if (f !== undefined && addr < f.addr + BigInt(f.len) && f.addr < addr + BigInt(len)) {
      return Promise.reject(f.error ?? new Error(`injected read failure at ${toHex(addr)}`));
    }
    try {
      return Promise.resolve(this.readSync(addr, len));
    } catch (e) {
      return Promise.reject(e as Error);
    }
  }
}
