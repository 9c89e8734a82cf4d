import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LedgerEntry } from '@nestlab/protocol';
import { judge } from './oracle.js';
import { rec } from './test-records.js';

describe('oracle: where misdirected data went', () => {
  // One read as a half fix posts it: header+status at pseudo 0x20043000, data at 0x20044000.
  const ledger: LedgerEntry[] = [
    { what: 'buffer', bus: '0x20043000', len: 17, pseudo: '0x20043000', mfns: [0x69f14] },
    { what: 'buffer', bus: '0x20044000', len: 4096, pseudo: '0x20044000', mfns: [0x69f15] },
    { what: 'ring', bus: '0x70000000', len: 4096, pseudo: '0x10000', mfns: [0x70000] },
  ];
  const owners = async (mfns: number[]) => mfns.map((m) => (m === 0x20043 ? 'xen' : 'free'));

  it('names each frame hit with its owner and counts the read whose sector went astray', async () => {
    const v = await judge(
      [
        rec({ what: 'avail', bus: '0x70000000', machine: '0x70000000' }),
        rec({ bus: '0x20043000', machine: '0x20043000' }),
        rec({ bus: '0x20044000', machine: '0x20044000', write: true, len: 4096 }),
        rec({ bus: '0x20043010', machine: '0x20043010', write: true, len: 1 }),
      ],
      ledger,
      owners,
    );
    assert.equal(v.counts.misdirected, 3);
    assert.equal(v.counts.misdirectedRing, 0);
    assert.equal(v.counts.intended, 1);
    assert.deepEqual(v.astray.frames, [
      { machine: '0x20043000', owner: 'xen', accesses: 2 },
      { machine: '0x20044000', owner: 'free', accesses: 1 },
    ]);
    assert.equal(v.astray.framesTotal, 2);
    assert.deepEqual(v.astray.byOwner, { xen: 2, free: 1 });
    // The status byte is not a sector: one read went astray, not two.
    assert.equal(v.astray.reads, 1);
  });

  it('counts device-local ring accesses apart and never as misdirected or faulted', async () => {
    const v = await judge(
      [
        rec({
          what: 'desc',
          bus: '0xfe800000',
          machine: null,
          hostPhys: null,
          verdict: 'device-local',
        }),
        rec({ bus: '0x20044000', machine: null, hostPhys: null, verdict: 'faulted' }),
      ],
      ledger,
      owners,
    );
    assert.equal(v.counts.deviceLocal, 1);
    assert.equal(v.counts.faulted, 1);
    assert.equal(v.counts.misdirected, 0);
    assert.equal(v.astray.framesTotal, 0);
    assert.ok(v.notable.every((j) => j.intent !== 'device-local'));
  });
});
