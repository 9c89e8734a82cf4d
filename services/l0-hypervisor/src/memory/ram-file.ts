import { closeSync, constants, openSync, readSync, writevSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { L0Error } from '../errors.js';

/** How guest RAM is backed: a sparse file in the data dir (survives a crash) or process memory. */
export type RamBacking = 'file' | 'anon';

/** `<dataDir>/<stack>-l0-ram.bin`: guest RAM, kept while L0 crashes and respawns. */
export function ramFilePath(dataDir: string, stack: string): string {
  return join(dataDir, `${stack}-l0-ram.bin`);
}

/**
 * Guest RAM's file backing, QEMU's memory-backend-file,share=on analogue:
 * stores also land in the file (the page cache keeps it when the
 * process is killed), so a respawned L0 finds the guest's memory as it was.
 * The file is sparse: only pages written take disk space, and nothing sizes
 * it up front (reads past its end are zeros).
 */
export class RamFile {
  private constructor(
    readonly path: string,
    private fd: number,
  ) {}

  /** `fresh`: a new run, the old contents dropped; else the crashed run's memory is kept. */
  static async open(path: string, fresh: boolean): Promise<RamFile> {
    try {
      await mkdir(dirname(path), { recursive: true });
      // Not 'a+': appending would ignore the offsets of positioned writes on Linux.
      const keep = constants.O_RDWR | constants.O_CREAT;
      return new RamFile(path, openSync(path, fresh ? keep | constants.O_TRUNC : keep, 0o600));
    } catch (cause) {
      throw new L0Error('DISK_IO', `cannot open guest RAM file ${path}: ${String(cause)}`, {
        cause,
      });
    }
  }

  /** Adjacent pieces from `at` on, in positioned gather writes (one, unless the kernel writes short). */
  writePages(at: number, pages: readonly Uint8Array[]): void {
    const rest = [...pages];
    let pos = at;
    while (rest.length > 0) {
      let done = writevSync(this.fd, rest, pos);
      pos += done;
      // Drop what was written whole; a piece written in part goes on from where it stopped.
      while (rest.length > 0 && done >= rest[0]!.byteLength) done -= rest.shift()!.byteLength;
      if (done > 0) rest[0] = rest[0]!.subarray(done);
    }
  }

  /** Reads one page into `out` (zero-filled); false when it holds nothing but zeros. */
  readPage(at: number, out: Uint8Array): boolean {
    let done = 0;
    while (done < out.byteLength) {
      const n = readSync(this.fd, out, done, out.byteLength - done, at + done);
      if (n === 0) break;
      done += n;
    }
    return out.some((b) => b !== 0);
  }

  close(): void {
    if (this.fd < 0) return;
    try {
      closeSync(this.fd);
    } catch {
      // already gone
    }
    this.fd = -1;
  }
}
