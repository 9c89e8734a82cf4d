import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hostPhysAddr, machineAddr } from '@nestlab/addr';
import { CpuFrames } from './cpu-frames.js';
import { GuestRam } from './guest-ram.js';
import { Memslots } from './memslots.js';

const GiB = 2n ** 30n;

describe('GuestRam', () => {
  it('backs only the pages written: one page at 3.9 GiB of a 4 GiB guest', () => {
    const ram = new GuestRam();
    const at = hostPhysAddr((39n * GiB) / 10n);
    ram.write(at, Uint8Array.of(1, 2, 3));
    assert.equal(ram.touchedPages, 1);
    assert.deepEqual(ram.read(at, 3), Uint8Array.of(1, 2, 3));
    assert.deepEqual(ram.read(hostPhysAddr(GiB), 8), new Uint8Array(8), 'untouched reads zero');
    assert.equal(ram.touchedPages, 1, 'reading does not allocate');
  });

  it('splits a write across a page boundary', () => {
    const ram = new GuestRam();
    const bytes = Uint8Array.from({ length: 20 }, (_, i) => i + 1);
    ram.write(hostPhysAddr(0x1ff6n), bytes);
    assert.equal(ram.touchedPages, 2);
    assert.deepEqual(ram.read(hostPhysAddr(0x1ff6n), 20), bytes);
  });
});

describe('Memslots', () => {
  it('maps 2 GiB as one slot and leaves the hole unmapped', () => {
    const m = new Memslots(2n * GiB);
    assert.equal(m.slots.length, 1);
    const t = m.translate(machineAddr(0x1234n), 4);
    assert.ok(t.ok);
    assert.equal(t.addr, 0x1234n);
    assert.equal(t.step.by, 'memslot');
    assert.equal(m.translate(machineAddr(2n * GiB), 1).ok, false);
  });

  it('relocates RAM above 3 GiB to 4 GiB: machine 4 GiB is host-phys 3 GiB', () => {
    const m = new Memslots(4n * GiB);
    assert.deepEqual(
      m.slots.map((s) => [s.machine, s.hostPhys, s.bytes]),
      [
        [0n, 0n, 3n * GiB],
        [4n * GiB, 3n * GiB, GiB],
      ],
    );
    const t = m.translate(machineAddr(4n * GiB + 0x10n));
    assert.ok(t.ok);
    assert.equal(t.addr, 3n * GiB + 0x10n);
    const hole = m.translate(machineAddr(3n * GiB + 0x1000n));
    assert.equal(hole.ok, false);
    assert.equal(hole.step.ok, false);
    assert.equal(m.translate(machineAddr(5n * GiB)).ok, false, 'past the end of slot 1');
    assert.equal(m.translate(machineAddr(3n * GiB - 2n), 4).ok, false, 'straddles slot 0 end');
  });

  it('refuses a RAM size that is not whole pages', () => {
    assert.throws(() => new Memslots(GiB + 1n), { code: 'CONFIG_INVALID' });
  });
});

describe('CpuFrames', () => {
  it('merges ranges and checks whole runs', () => {
    const f = new CpuFrames();
    assert.equal(
      f.set(0, [
        { first: 10, count: 5 },
        { first: 15, count: 5 },
        { first: 100, count: 1 },
      ]),
      11,
    );
    assert.equal(f.allows(0, 10, 19), true);
    assert.equal(f.allows(0, 19, 20), false);
    assert.equal(f.allows(0, 100, 100), true);
    assert.equal(f.allows(0, 9, 9), false);
    assert.equal(f.allows(1, 10, 10), false, 'another domain has nothing');
    f.set(0, []);
    assert.equal(f.allows(0, 10, 10), false, 'full replacement');
  });
});
