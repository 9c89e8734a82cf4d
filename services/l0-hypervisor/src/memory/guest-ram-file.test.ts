// Guest RAM backed by a file: what a respawned L0 finds after a SIGKILL.
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { hostPhysAddr } from '@nestlab/addr';
import { GuestRam } from './guest-ram.js';
import { RamFile } from './ram-file.js';

const GiB = 2n ** 30n;

describe('GuestRam with a RamFile', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nestlab-ram-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('keeps stores across a crash, sparse: a page at 3.9 GiB costs a page of disk', async () => {
    const path = join(dir, 'ram.bin');
    const ram = new GuestRam();
    ram.attach(await RamFile.open(path, true), false);
    const high = hostPhysAddr((39n * GiB) / 10n);
    ram.write(high, Uint8Array.of(1, 2, 3));
    ram.write(
      hostPhysAddr(0x1ff6n),
      Uint8Array.from({ length: 20 }, (_, i) => i + 1),
    );
    // The crash: no close, the in-memory pages are simply gone with the process.
    const respawned = new GuestRam();
    respawned.attach(await RamFile.open(path, false), true);
    assert.equal(respawned.touchedPages, 0, 'nothing loaded until touched');
    assert.deepEqual(respawned.read(high, 3), Uint8Array.of(1, 2, 3));
    assert.deepEqual(
      respawned.read(hostPhysAddr(0x1ff6n), 20),
      Uint8Array.from({ length: 20 }, (_, i) => i + 1),
    );
    assert.deepEqual(respawned.read(hostPhysAddr(GiB), 8), new Uint8Array(8), 'untouched is zeros');
    assert.equal(respawned.touchedPages, 3, 'only the pages with data were loaded');
    // A partial store on a page not loaded yet keeps the rest of the page.
    respawned.write(hostPhysAddr(0x1ff6n), Uint8Array.of(0xaa));
    assert.deepEqual(respawned.read(hostPhysAddr(0x1ff7n), 2), Uint8Array.of(2, 3));
    const st = await stat(path);
    assert.ok(st.size > Number((39n * GiB) / 10n), 'the file spans the guest');
    assert.ok(st.blocks * 512 < 1 << 20, `sparse: ${st.blocks * 512} bytes allocated`);
    respawned.clear();
  });

  it('a fresh run starts from zeros', async () => {
    const path = join(dir, 'ram2.bin');
    const ram = new GuestRam();
    ram.attach(await RamFile.open(path, true), false);
    ram.write(hostPhysAddr(0x5000n), Uint8Array.of(9));
    ram.attach(await RamFile.open(path, true), false);
    assert.deepEqual(ram.read(hostPhysAddr(0x5000n), 1), Uint8Array.of(0));
    const reopened = new GuestRam();
    reopened.attach(await RamFile.open(path, false), true);
    assert.deepEqual(reopened.read(hostPhysAddr(0x5000n), 1), Uint8Array.of(0));
    ram.clear();
    reopened.clear();
  });
});

describe('GuestRam write-behind', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nestlab-ram-wb-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('flush puts runs of adjacent dirty pages and scattered ones in the file', async () => {
    const path = join(dir, 'ram.bin');
    const ram = new GuestRam();
    ram.attach(await RamFile.open(path, true), false);
    // Three adjacent pages (one run) written in pieces, and a page far away.
    for (let page = 0x10; page < 0x13; page++) {
      ram.write(hostPhysAddr(BigInt(page * 4096 + 100)), Uint8Array.of(page, 0xee));
    }
    ram.write(hostPhysAddr(0x80000n + 4094n), Uint8Array.of(7, 8, 9, 10));
    ram.flush();
    const after = new GuestRam();
    after.attach(await RamFile.open(path, false), true);
    for (let page = 0x10; page < 0x13; page++) {
      assert.deepEqual(
        after.read(hostPhysAddr(BigInt(page * 4096 + 100)), 2),
        Uint8Array.of(page, 0xee),
      );
    }
    assert.deepEqual(after.read(hostPhysAddr(0x80000n + 4094n), 4), Uint8Array.of(7, 8, 9, 10));
    ram.clear();
    after.clear();
  });

  it('stores reach the file by the end of the event-loop turn without a flush', async () => {
    const path = join(dir, 'ram2.bin');
    const ram = new GuestRam();
    ram.attach(await RamFile.open(path, true), false);
    ram.write(hostPhysAddr(0x3000n), Uint8Array.of(0x5a));
    await new Promise<void>((r) => setImmediate(r));
    const after = new GuestRam();
    after.attach(await RamFile.open(path, false), true);
    assert.deepEqual(after.read(hostPhysAddr(0x3000n), 1), Uint8Array.of(0x5a));
    ram.clear();
    after.clear();
  });
});
