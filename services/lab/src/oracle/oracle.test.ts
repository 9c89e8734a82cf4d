import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DmaRecord, LedgerEntry } from '@nestlab/protocol';
import { judge } from './oracle.js';

const rec = (over: Partial<DmaRecord>): DmaRecord => ({
  seq: 0,
  bdf: '0000:00:04.0',
  what: 'buffer',
  write: false,
  bus: '0x0',
  len: 16,
  machine: '0x0',
  hostPhys: '0x0',
  verdict: 'direct',
  ...over,
});

describe('oracle', () => {
  // dom0 posted a two-page buffer at pseudo 0x20000800, machine frames 0x70123 and 0x40500.
  const ledger: LedgerEntry[] = [
    {
      what: 'buffer',
      bus: '0x20000800',
      len: 0x1000,
      pseudo: '0x20000800',
      mfns: [0x70123, 0x40500],
    },
  ];
  const owners = async (mfns: number[]) => mfns.map((m) => (m < 0x40000 ? 'xen' : 'dom0'));

  it('calls an access intended when it hits the frame behind the posted page', async () => {
    const v = await judge(
      [
        rec({ bus: '0x20000800', machine: '0x70123800' }),
        rec({ bus: '0x20001000', machine: '0x40500000', verdict: 'translated' }),
      ],
      ledger,
      owners,
    );
    assert.equal(v.counts.intended, 2);
    assert.equal(v.counts.misdirected, 0);
    assert.equal(v.counts.translated, 1);
    assert.equal(v.counts.direct, 1);
  });

  it('names the owner of the frame a misdirected access hit', async () => {
    const v = await judge([rec({ bus: '0x20000800', machine: '0x20000800' })], ledger, owners);
    assert.equal(v.counts.misdirected, 1);
    assert.equal(v.firstMisdirected?.owner, 'xen');
    assert.equal(v.firstMisdirected?.intendedMfn, 0x70123);
  });

  it('counts faults and accesses outside every mapping apart', async () => {
    const v = await judge(
      [
        rec({ verdict: 'faulted', machine: null, hostPhys: null }),
        rec({ bus: '0x9000000', machine: '0x9000000', what: 'rogue', verdict: 'bypass' }),
      ],
      ledger,
      owners,
    );
    assert.equal(v.counts.faulted, 1);
    assert.equal(v.counts.outside, 1);
    assert.equal(v.counts.bypassed, 1);
    assert.equal(v.firstOutside?.owner, 'xen');
  });
});

describe('oracle with reused bus addresses', () => {
  it('calls an access intended when any mapping of its IOVA meant the frame it hit', async () => {
    const ledger: LedgerEntry[] = [
      { what: 'buffer', bus: '0x100006000', len: 4096, pseudo: '0x20000000', mfns: [0x6b6db] },
      { what: 'buffer', bus: '0x100006000', len: 4096, pseudo: '0x20005000', mfns: [0x6b6d7] },
    ];
    const v = await judge(
      [
        rec({ bus: '0x100006000', machine: '0x6b6db000', verdict: 'translated' }),
        rec({ bus: '0x100006010', machine: '0x6b6d7010', verdict: 'translated' }),
      ],
      ledger,
      async (m) => m.map(() => 'dom0'),
    );
    assert.equal(v.counts.intended, 2);
    const w = await judge(
      [rec({ bus: '0x100006000', machine: '0x12345000', verdict: 'translated' })],
      ledger,
      async (m) => m.map(() => 'xen'),
    );
    assert.equal(w.counts.misdirected, 1);
  });
});
