import { readSync, writeSync } from 'node:fs';
import { mkdir, open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { L0Error } from '../errors.js';
import { WriteCache, CACHE_BLOCK } from './write-cache.js';

export { diskImagePath } from '@nestlab/formats';

export interface DiskCacheOptions {
  /** Dirty bytes kept before the oldest blocks are written back (0: nothing is kept). */
  readonly cacheLimitBytes: number;
  /**
   * TEST ONLY: FLUSH completes without writing the cache back — the
   * "acknowledge before it reaches the disk" bug the checkers must catch.
   */
  readonly unsafeFlush: boolean;
}

export const DEFAULT_DISK_CACHE: DiskCacheOptions = {
  cacheLimitBytes: 16 << 20,
  unsafeFlush: false,
};

/**
 * A raw disk image file behind a volatile write cache, as QEMU's
 * cache=writeback gives a guest: a completed write sits in this process
 * (reads see it) until FLUSH writes every dirty block to the file and fsyncs
 * it, so only a FLUSHed write is sure to survive a SIGKILL of l0. Without
 * VIRTIO_BLK_F_FLUSH the driver has no way to ask for that, so writes go
 * through to the file and are synced before they complete (spec 5.2.6.2).
 * The image is created sparse and kept across restarts unless fresh.
 * File I/O is synchronous: a 4 KiB pread/pwrite against the page cache takes
 * microseconds, while a thread-pool round trip costs two thread wake-ups per
 * request, which dominated device latency on small VMs.
 */
export class DiskBackend {
  private readonly cache: WriteCache;
  private closed = false;

  private constructor(
    readonly path: string,
    readonly bytes: number,
    private readonly fh: FileHandle,
    readonly options: DiskCacheOptions,
  ) {
    this.cache = new WriteCache(options.cacheLimitBytes);
  }

  static async open(
    path: string,
    bytes: number,
    fresh: boolean,
    options: DiskCacheOptions = DEFAULT_DISK_CACHE,
  ): Promise<DiskBackend> {
    try {
      await mkdir(dirname(path), { recursive: true });
      let fh: FileHandle;
      try {
        fh = await open(path, fresh ? 'w+' : 'r+');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        fh = await open(path, 'w+');
      }
      // ftruncate: sets the size without allocating blocks (a sparse file).
      if ((await fh.stat()).size !== bytes) await fh.truncate(bytes);
      return new DiskBackend(path, bytes, fh, options);
    } catch (cause) {
      throw new L0Error('DISK_IO', `cannot open disk image ${path}: ${String(cause)}`, { cause });
    }
  }

  /** Bytes written but not yet in the image file. */
  get dirtyBytes(): number {
    return this.cache.dirtyBytes;
  }

  async read(offset: number, len: number): Promise<Uint8Array> {
    // A read of blocks the cache holds whole needs nothing from the file.
    const buf = this.cache.covers(offset, len) ? new Uint8Array(len) : this.readFile(offset, len);
    this.cache.overlay(offset, buf);
    return buf;
  }

  /**
   * A write the device completes next. `writeThrough`: the driver did not
   * negotiate FLUSH, so the data must be durable now.
   */
  async write(offset: number, data: Uint8Array, writeThrough = false): Promise<void> {
    if (writeThrough) {
      // Older cached blocks first, so the file never holds newer-then-older data.
      this.writeBack(this.cache.takeAll());
      this.writeFile(offset, data);
      await this.fh.datasync();
      return;
    }
    this.cache.put(offset, data, (block) => this.readFile(block * CACHE_BLOCK, CACHE_BLOCK));
    const evicted = this.cache.takeOverLimit();
    this.writeBack(evicted);
    this.cache.release(evicted);
  }

  /** VIRTIO_BLK_T_FLUSH: every write completed so far reaches the file, then fsync. */
  async flush(): Promise<void> {
    if (this.options.unsafeFlush) return;
    this.writeBack(this.cache.takeAll());
    await this.fh.sync();
  }

  /** Clean shutdown: what a stopping QEMU does (bdrv_close flushes). */
  async close(): Promise<void> {
    if (this.closed) return;
    try {
      this.writeBack(this.cache.takeAll());
      await this.fh.sync();
    } catch {
      // The image is being closed anyway; a failed write-back is the disk's loss.
    }
    this.closed = true;
    await this.fh.close().catch(() => undefined);
  }

  /** What a SIGKILL does to this process: the volatile cache is gone, the file stays. */
  async closeWithoutWriteBack(): Promise<void> {
    this.closed = true;
    await this.fh.close().catch(() => undefined);
  }

  private writeBack(runs: readonly { block: number; bytes: Uint8Array }[]): void {
    for (const r of runs) {
      const at = r.block * CACHE_BLOCK;
      // The last block of a disk that is not whole blocks must not grow the file.
      this.writeFile(
        at,
        r.bytes.subarray(0, Math.max(0, Math.min(r.bytes.byteLength, this.bytes - at))),
      );
    }
  }

  private readFile(offset: number, len: number): Uint8Array {
    const buf = new Uint8Array(len);
    let done = 0;
    while (done < len) {
      const n = readSync(this.fh.fd, buf, done, len - done, offset + done);
      if (n === 0) break; // past EOF reads as zeros
      done += n;
    }
    return buf;
  }

  private writeFile(offset: number, data: Uint8Array): void {
    let done = 0;
    while (done < data.byteLength) {
      done += writeSync(this.fh.fd, data, done, data.byteLength - done, offset + done);
    }
  }
}
