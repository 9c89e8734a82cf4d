// dom0's IOVA space for the device's IOMMU domain (Linux iova.c, much simplified).
// Starts at 4 GiB so an IOVA is never a valid pseudo-physical or machine
// address of the lab's layouts: a driver mixing them up shows at once.
import { busAddr, type BusAddr } from '@nestlab/addr';
import { RunAllocator } from '../mm/run-allocator.js';

export const IOVA_START = 0x1_0000_0000n;
/** 48-bit IOVA space, as VT-d's 4-level tables give. */
const IOVA_END = 1n << 48n;
const PAGE_SHIFT = 12n;

export class IovaAllocator {
  private readonly runs: RunAllocator;

  constructor(start: bigint = IOVA_START) {
    const first = Number(start >> PAGE_SHIFT);
    this.runs = new RunAllocator(
      [{ first, count: Number(IOVA_END >> PAGE_SHIFT) - first }],
      'IOVA pages',
    );
  }

  alloc(pages: number): BusAddr {
    return busAddr(BigInt(this.runs.alloc(pages)) << PAGE_SHIFT);
  }

  release(iova: BusAddr, pages: number): void {
    this.runs.release(Number(iova >> PAGE_SHIFT), pages);
  }

  get usedPages(): number {
    return this.runs.usedCount;
  }
}
