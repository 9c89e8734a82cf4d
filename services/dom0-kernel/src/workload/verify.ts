// What the disk should hold, per the workload's own writes, checked against
// the self-describing block stamps of @nestlab/formats (the format both the
// workload and the lab's checkers read).
import { isBlockContent, isZeroBlock, type BlockStamp } from '@nestlab/formats';

type Candidate = BlockStamp | 'zeros';

/**
 * What the disk should hold, block by block: the last acknowledged write,
 * zeros for a block never written, and — after a write that failed or timed
 * out — either the old or the new content (the device may or may not have done it).
 */
export class BlockModel {
  private readonly expect = new Map<number, Candidate[]>();
  private readonly generations = new Map<number, number>();

  constructor(readonly bs: number) {}

  nextGeneration(block: number): number {
    const g = (this.generations.get(block) ?? 0) + 1;
    this.generations.set(block, g);
    return g;
  }

  ackWrite(s: BlockStamp): void {
    this.expect.set(s.block, [s]);
  }

  uncertainWrite(s: BlockStamp): void {
    this.expect.set(s.block, [...this.candidates(s.block), s]);
  }

  candidates(block: number): Candidate[] {
    return this.expect.get(block) ?? ['zeros'];
  }

  /** True when `bytes` equal one of the block's expected contents. */
  check(block: number, bytes: Uint8Array): boolean {
    return this.candidates(block).some((c) =>
      c === 'zeros'
        ? bytes.byteLength === this.bs && isZeroBlock(bytes)
        : isBlockContent(c, this.bs, bytes),
    );
  }
}
