import { closeSync, openSync, readSync } from 'node:fs';
import { describeBlock } from '@nestlab/formats';
import type { Found } from './history.js';

export class ImageError extends Error {
  override readonly name = 'ImageError';
  readonly code = 'IMAGE_UNREADABLE';
}

/**
 * What each of the first `blocks` blocks of a disk image file holds, read
 * from the file itself (not through L0), as the workload's stamps describe it.
 */
export function readImageBlocks(path: string, bs: number, blocks: number): Found[] {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw new ImageError(`cannot open the disk image ${path}: ${(err as Error).message}`);
  }
  try {
    const out: Found[] = [];
    const buf = new Uint8Array(bs);
    for (let b = 0; b < blocks; b++) {
      buf.fill(0);
      let done = 0;
      while (done < bs) {
        const n = readSync(fd, buf, done, bs - done, b * bs + done);
        if (n === 0) break; // past the end of a sparse file reads as zeros
        done += n;
      }
      const d = describeBlock(buf);
      out.push(
        typeof d === 'string' ? d : { seed: d.seed, block: d.block, generation: d.generation },
      );
    }
    return out;
  } finally {
    closeSync(fd);
  }
}
