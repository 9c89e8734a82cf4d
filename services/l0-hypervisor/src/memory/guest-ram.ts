import { PAGE_SHIFT, PAGE_SIZE } from '@nestlab/addr';
import type { HostPhysAddr } from '@nestlab/addr';

const PAGE_MASK = BigInt(PAGE_SIZE - 1);

/**
 * L0's RAM backing, addressed by host-physical address. Pages exist once
 * written, so a 4 GiB guest costs only what it touched; untouched memory
 * reads as zeros (as freshly allocated anonymous memory does).
 */
export class GuestRam {
  private readonly pages = new Map<number, Uint8Array>();

  /** Calls fn for each page-bounded piece of [addr, addr+len). */
  private static each(
    addr: HostPhysAddr,
    len: number,
    fn: (page: number, off: number, at: number, n: number) => void,
  ): void {
    let done = 0;
    while (done < len) {
      const a = addr + BigInt(done);
      const off = Number(a & PAGE_MASK);
      const n = Math.min(PAGE_SIZE - off, len - done);
      fn(Number(a >> BigInt(PAGE_SHIFT)), off, done, n);
      done += n;
    }
  }

  read(addr: HostPhysAddr, len: number): Uint8Array {
    const out = new Uint8Array(len);
    this.readInto(addr, len, out, 0);
    return out;
  }

  /** Reads into `out` at `at` (which must be zero-filled there: untouched pages are not copied). */
  readInto(addr: HostPhysAddr, len: number, out: Uint8Array, at: number): void {
    GuestRam.each(addr, len, (page, off, done, n) => {
      const p = this.pages.get(page);
      if (p) out.set(p.subarray(off, off + n), at + done);
    });
  }

  write(addr: HostPhysAddr, bytes: Uint8Array): void {
    GuestRam.each(addr, bytes.byteLength, (page, off, at, n) => {
      let p = this.pages.get(page);
      if (!p) {
        p = new Uint8Array(PAGE_SIZE);
        this.pages.set(page, p);
      }
      p.set(bytes.subarray(at, at + n), off);
    });
  }

  clear(): void {
    this.pages.clear();
  }

  get touchedPages(): number {
    return this.pages.size;
  }

  get touchedBytes(): number {
    return this.pages.size * PAGE_SIZE;
  }
}
