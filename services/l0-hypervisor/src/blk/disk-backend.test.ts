// The write-back cache against a real image file. A "crash" is
// closeWithoutWriteBack: the process's memory is gone, the file stays.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pattern } from '../testing/blk-helpers.js';
import { DiskBackend, type DiskCacheOptions } from './disk-backend.js';

const MiB = 1 << 20;
const SAFE: DiskCacheOptions = { cacheLimitBytes: MiB, unsafeFlush: false };

describe('DiskBackend write-back cache', () => {
  let dir: string;
  let n = 0;
  const image = () => join(dir, `disk-${n++}.img`);
  const onDisk = async (path: string, offset: number, len: number) =>
    Uint8Array.from((await readFile(path)).subarray(offset, offset + len));
  /** Drops the process's cache, as SIGKILL does, and opens the image again. */
  const crashAndReopen = async (disk: DiskBackend, opts = SAFE) => {
    await disk.closeWithoutWriteBack();
    return DiskBackend.open(disk.path, disk.bytes, false, opts);
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nestlab-disk-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('serves reads from the cache; an unflushed write is gone after a crash', async () => {
    const disk = await DiskBackend.open(image(), 8 * MiB, true, SAFE);
    const data = pattern(4096, 1);
    await disk.write(8192, data);
    assert.deepEqual(await disk.read(8192, 4096), data, 'reads see the cached write');
    assert.equal(disk.dirtyBytes, 4096);
    assert.ok(
      (await onDisk(disk.path, 8192, 4096)).every((b) => b === 0),
      'not in the file yet',
    );
    const again = await crashAndReopen(disk);
    assert.ok(
      (await again.read(8192, 4096)).every((b) => b === 0),
      'the volatile cache died',
    );
    await again.close();
  });

  it('reuses a written-back block for a new one without changing what either holds', async () => {
    // One block of cache: each new block evicts the one before, whose array is reused next.
    const disk = await DiskBackend.open(image(), 8 * MiB, true, {
      cacheLimitBytes: 4096,
      unsafeFlush: false,
    });
    const blocks = [1, 2, 3, 4].map((i) => pattern(4096, i));
    for (const [i, data] of blocks.entries()) await disk.write(i * 4096, data);
    for (const [i, data] of blocks.entries()) {
      assert.deepEqual(await disk.read(i * 4096, 4096), data, `block ${i} reads back`);
    }
    for (const [i, data] of blocks.slice(0, 3).entries()) {
      assert.deepEqual(await onDisk(disk.path, i * 4096, 4096), data, `block ${i} in the file`);
    }
    await disk.close();
  });

  it('a read spanning cached and uncached blocks takes each from where it is', async () => {
    const disk = await DiskBackend.open(image(), 8 * MiB, true, SAFE);
    const a = pattern(8192, 4);
    const b = pattern(4096, 5);
    await disk.write(0, a);
    await disk.flush();
    await disk.write(4096, b);
    const whole = await disk.read(0, 12288);
    assert.deepEqual(whole.subarray(0, 4096), a.subarray(0, 4096), 'block 0 from the file');
    assert.deepEqual(whole.subarray(4096, 8192), b, 'block 1 from the cache');
    assert.ok(
      whole.subarray(8192).every((x) => x === 0),
      'block 2 never written',
    );
    assert.deepEqual(
      await disk.read(4096 + 512, 1024),
      b.subarray(512, 1536),
      'inside one cached block',
    );
    await disk.close();
  });

  it('a FLUSHed write survives a crash; writes after the FLUSH do not', async () => {
    const disk = await DiskBackend.open(image(), 8 * MiB, true, SAFE);
    const a = pattern(4096, 2);
    const b = pattern(4096, 3);
    await disk.write(0, a);
    await disk.flush();
    assert.equal(disk.dirtyBytes, 0);
    await disk.write(4096, b);
    const again = await crashAndReopen(disk);
    assert.deepEqual(await again.read(0, 4096), a);
    assert.ok((await again.read(4096, 4096)).every((x) => x === 0));
    await again.close();
  });

  it('merges a sector write into the block already on disk (read-modify-write)', async () => {
    const disk = await DiskBackend.open(image(), 8 * MiB, true, SAFE);
    const whole = pattern(4096, 4);
    await disk.write(0, whole);
    await disk.flush();
    const sector = pattern(512, 5);
    await disk.write(1024, sector);
    const want = whole.slice();
    want.set(sector, 1024);
    assert.deepEqual(await disk.read(0, 4096), want);
    // A read straddling cached and uncached blocks.
    assert.deepEqual((await disk.read(2048, 4096)).subarray(0, 2048), want.subarray(2048));
    await disk.flush();
    assert.deepEqual(await onDisk(disk.path, 0, 4096), want);
    await disk.close();
  });

  it('writes back the oldest dirty blocks beyond the limit, so memory stays bounded', async () => {
    const disk = await DiskBackend.open(image(), 8 * MiB, true, {
      cacheLimitBytes: 16 * 1024,
      unsafeFlush: false,
    });
    for (let i = 0; i < 8; i++) await disk.write(i * 4096, pattern(4096, 10 + i));
    assert.equal(disk.dirtyBytes, 16 * 1024);
    // Blocks 0-3 (the oldest) went to the file, 4-7 are still only cached.
    assert.deepEqual(await onDisk(disk.path, 0, 4096), pattern(4096, 10));
    assert.ok((await onDisk(disk.path, 7 * 4096, 4096)).every((b) => b === 0));
    for (let i = 0; i < 8; i++)
      assert.deepEqual(await disk.read(i * 4096, 4096), pattern(4096, 10 + i));
    await disk.close();
  });

  it('write-through (no FLUSH negotiated) is durable at completion, older cached data first', async () => {
    const disk = await DiskBackend.open(image(), 8 * MiB, true, SAFE);
    await disk.write(0, pattern(4096, 20)); // cached, write-back
    await disk.write(4096, pattern(4096, 21), true);
    const again = await crashAndReopen(disk);
    assert.deepEqual(await again.read(0, 4096), pattern(4096, 20));
    assert.deepEqual(await again.read(4096, 4096), pattern(4096, 21));
    await again.close();
  });

  it('unsafeFlush: FLUSH completes but the data is lost on a crash (the bug the checkers catch)', async () => {
    const unsafe = { ...SAFE, unsafeFlush: true };
    const disk = await DiskBackend.open(image(), 8 * MiB, true, unsafe);
    await disk.write(0, pattern(4096, 30));
    await disk.flush();
    assert.equal(disk.dirtyBytes, 4096, 'FLUSH left the cache dirty');
    const again = await crashAndReopen(disk, unsafe);
    assert.ok((await again.read(0, 4096)).every((b) => b === 0));
    await again.close();
  });

  it('a clean close writes the cache back; the last partial block does not grow the file', async () => {
    const bytes = 4096 + 1024; // not whole cache blocks
    const disk = await DiskBackend.open(image(), bytes, true, SAFE);
    await disk.write(4096, pattern(1024, 40));
    await disk.close();
    const file = await readFile(disk.path);
    assert.equal(file.byteLength, bytes);
    assert.deepEqual(Uint8Array.from(file.subarray(4096)), pattern(1024, 40));
  });
});
