import { PAGE_SHIFT, PAGE_SIZE } from '@nestlab/addr';
import type { HostPhysAddr } from '@nestlab/addr';
import { atEndOfTurn } from '../turn.js';
import type { RamFile } from './ram-file.js';

const PAGE_MASK = BigInt(PAGE_SIZE - 1);
const PAGE_SHIFT_N = BigInt(PAGE_SHIFT);

/**
 * L0's RAM backing, addressed by host-physical address. Pages exist once
 * written, so a 4 GiB guest costs only what it touched; untouched memory
 * reads as zeros (as freshly allocated anonymous memory does).
 *
 * With a file attached, stores reach it too, so the guest's memory outlives a
 * crash of this process; after a respawn the pages are loaded from the file
 * when first touched. Stores mark their pages dirty and the dirty pages go to
 * the file in runs (one syscall per run of adjacent pages) before L0 sends
 * anything (`flush`, hooked to the bus) and at the latest at the end of the
 * event-loop turn. A crash thus loses only stores nobody has heard of yet,
 * like messages still in flight; a store per syscall cost L0 a fifth of its
 * time per I/O.
 */
export class GuestRam {
  private readonly pages = new Map<number, Uint8Array>();
  private readonly dirty = new Set<number>();
  private flushQueued = false;
  private file: RamFile | null = null;
  /** The file may hold pages the map has not loaded yet (a respawn). */
  private fileHasPages = false;
  /** Stores the file refused (the guest keeps running on the in-memory copy). */
  fileErrors = 0;

  read(addr: HostPhysAddr, len: number): Uint8Array {
    const out = new Uint8Array(len);
    this.readInto(addr, len, out, 0);
    return out;
  }

  /** Reads into `out` at `at` (which must be zero-filled there: untouched pages are not copied). */
  readInto(addr: HostPhysAddr, len: number, out: Uint8Array, at: number): void {
    // Page by page in plain numbers (the bigint address is split once).
    let page = Number(addr >> PAGE_SHIFT_N);
    let off = Number(addr & PAGE_MASK);
    for (let done = 0; done < len; page++, off = 0) {
      const n = Math.min(PAGE_SIZE - off, len - done);
      const p = this.pages.get(page) ?? this.load(page);
      if (p) out.set(p.subarray(off, off + n), at + done);
      done += n;
    }
  }

  write(addr: HostPhysAddr, bytes: Uint8Array): void {
    const len = bytes.byteLength;
    let page = Number(addr >> PAGE_SHIFT_N);
    let off = Number(addr & PAGE_MASK);
    for (let done = 0; done < len; page++, off = 0) {
      const n = Math.min(PAGE_SIZE - off, len - done);
      let p = this.pages.get(page) ?? this.load(page);
      if (!p) {
        p = new Uint8Array(PAGE_SIZE);
        this.pages.set(page, p);
      }
      p.set(n === len ? bytes : bytes.subarray(done, done + n), off);
      if (this.file) this.dirty.add(page);
      done += n;
    }
    if (this.file && !this.flushQueued) {
      this.flushQueued = true;
      atEndOfTurn(() => this.flush());
    }
  }

  /** Writes the dirty pages to the file, adjacent pages in one call. */
  flush(): void {
    this.flushQueued = false;
    if (this.dirty.size === 0 || !this.file) return;
    const order = [...this.dirty].sort((a, b) => a - b);
    this.dirty.clear();
    let run: Uint8Array[] = [];
    let first = 0;
    const put = () => {
      if (run.length === 0) return;
      try {
        this.file?.writePages(first * PAGE_SIZE, run);
      } catch {
        this.fileErrors++;
      }
      run = [];
    };
    for (const page of order) {
      const p = this.pages.get(page);
      if (!p) continue;
      if (run.length > 0 && page !== first + run.length) put();
      if (run.length === 0) first = page;
      run.push(p);
    }
    put();
  }

  /** A page the file holds from before a respawn, now kept in the map; undefined when zeros. */
  private load(page: number): Uint8Array | undefined {
    if (!this.fileHasPages || !this.file) return undefined;
    const p = new Uint8Array(PAGE_SIZE);
    try {
      if (!this.file.readPage(page * PAGE_SIZE, p)) return undefined;
    } catch {
      this.fileErrors++;
      return undefined;
    }
    this.pages.set(page, p);
    return p;
  }

  /**
   * Empties the in-memory pages and backs RAM with `file` (or nothing).
   * `restored`: the file holds a crashed run's memory, loaded page by page.
   */
  attach(file: RamFile | null, restored: boolean): void {
    // The memory is being dropped: its unwritten stores go with it.
    this.dirty.clear();
    this.file?.close();
    this.pages.clear();
    this.file = file;
    this.fileHasPages = file !== null && restored;
  }

  clear(): void {
    this.attach(null, false);
  }

  get backing(): { file: string | null; errors: number } {
    return { file: this.file?.path ?? null, errors: this.fileErrors };
  }

  get touchedPages(): number {
    return this.pages.size;
  }

  get touchedBytes(): number {
    return this.pages.size * PAGE_SIZE;
  }
}
