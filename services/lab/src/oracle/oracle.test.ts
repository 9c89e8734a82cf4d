import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FrameMove, LedgerEntry } from '@nestlab/protocol';
import { judge } from './oracle.js';
import { rec } from './test-records.js';

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

describe('oracle with mapping lifetimes (stale IOTLB hits)', () => {
  // IOVA 0x100006000 mapped frame 0x6b6db from t=100, unmapped (acknowledged) at t=200,
  // then reused for frame 0x6b6d7 from t=210, still live.
  const ledger: LedgerEntry[] = [
    {
      what: 'buffer',
      bus: '0x100006000',
      len: 4096,
      pseudo: '0x20000000',
      mfns: [0x6b6db],
      mappedAt: 100,
      unmappedAt: 200,
    },
    {
      what: 'buffer',
      bus: '0x100006000',
      len: 4096,
      pseudo: '0x20005000',
      mfns: [0x6b6d7],
      mappedAt: 210,
    },
  ];
  const owners = async (m: number[]) => m.map(() => 'dom0');

  it('judges the fresh mapping at a reused IOVA intended and the stale one stale', async () => {
    const v = await judge(
      [
        // Through the old mapping while it was live: intended.
        rec({ seq: 0, bus: '0x100006000', machine: '0x6b6db000', verdict: 'translated', at: 150 }),
        // Through the new mapping: intended.
        rec({ seq: 1, bus: '0x100006010', machine: '0x6b6d7010', verdict: 'translated', at: 250 }),
        // Through a stale IOTLB entry of the old mapping, after its unmap was acknowledged.
        rec({ seq: 2, bus: '0x100006020', machine: '0x6b6db020', verdict: 'translated', at: 260 }),
      ],
      ledger,
      owners,
    );
    assert.equal(v.counts.intended, 2);
    assert.equal(v.counts.stale, 1);
    assert.equal(v.counts.misdirected, 0);
    assert.equal(v.firstStale?.record.seq, 2);
    assert.equal(v.firstStale?.intendedMfn, 0x6b6db);
    assert.equal(v.firstStale?.owner, 'dom0');
    assert.ok(
      v.notable.some((j) => j.intent === 'stale'),
      'a stale access is traced',
    );
  });

  it('an access between the unmap and the remap through the old frame is stale too', async () => {
    const v = await judge(
      [rec({ bus: '0x100006000', machine: '0x6b6db000', verdict: 'translated', at: 205 })],
      ledger,
      owners,
    );
    assert.equal(v.counts.stale, 1);
  });

  it('a frame no mapping of the IOVA ever meant stays misdirected, at any time', async () => {
    const v = await judge(
      [rec({ bus: '0x100006000', machine: '0x12345000', verdict: 'translated', at: 260 })],
      ledger,
      owners,
    );
    assert.equal(v.counts.misdirected, 1);
    assert.equal(v.firstMisdirected?.intendedMfn, 0x6b6d7, 'compared with the live mapping');
  });

  describe('a frame Xen moved under a live mapping (p2m-change)', () => {
    // pfn 0x20001 (the page at pseudo 0x20001000) was at mfn 0x40500 when mapped
    // at t=100 and lives; Xen moved it to mfn 0x51000 at t=300.
    const mapped: LedgerEntry[] = [
      {
        what: 'buffer',
        bus: '0x100001000',
        len: 0x1000,
        pseudo: '0x20001000',
        mfns: [0x40500],
        mappedAt: 100,
      },
    ];
    const moves: FrameMove[] = [{ domain: 0, pfn: 0x20001, from: 0x40500, to: 0x51000, at: 300 }];
    const nobody = async (mfns: number[]) => mfns.map(() => 'free');
    const at = (t: number, machine: string) =>
      rec({ bus: '0x100001010', machine, verdict: 'translated', at: t });

    it('an access to the old frame before the move is intended, after it misdirected', async () => {
      const v = await judge([at(200, '0x40500010'), at(400, '0x40500010')], mapped, nobody, moves);
      assert.equal(v.counts.intended, 1);
      assert.equal(v.counts.misdirected, 1);
      assert.equal(v.firstMisdirected?.record.at, 400);
      assert.equal(v.firstMisdirected?.intendedMfn, 0x51000, "the pfn's frame at that time");
      assert.equal(v.firstMisdirected?.owner, 'free');
    });

    it('without the moves the same accesses would all pass as intended', async () => {
      const v = await judge([at(200, '0x40500010'), at(400, '0x40500010')], mapped, nobody);
      assert.equal(v.counts.intended, 2);
    });

    it('an access to the frame a pfn left under a live mapping is misdirected, though an unmapped mapping of the address meant that frame', async () => {
      // Xen PV without an IOMMU: bus = machine. The same buffer was mapped and
      // unmapped at that address before (t 10..50), then mapped again (t 100, live).
      const direct = (e: Partial<LedgerEntry>): LedgerEntry => ({
        what: 'buffer',
        bus: '0x40500000',
        len: 0x1000,
        pseudo: '0x20001000',
        mfns: [0x40500],
        ...e,
      });
      const ledger = [direct({ mappedAt: 10, unmappedAt: 50 }), direct({ mappedAt: 100 })];
      const access = (t: number) =>
        rec({ bus: '0x40500010', machine: '0x40500010', verdict: 'direct', at: t });
      const v = await judge([access(200), access(400)], ledger, nobody, moves);
      assert.equal(v.counts.intended, 1, 'before the move');
      assert.equal(v.counts.misdirected, 1, 'after it: the old frame, under a live mapping');
      assert.equal(v.counts.stale, 0);
      // The same through an IOMMU whose live mapping of a reused IOVA still points at the old frame.
      const iova = (e: Partial<LedgerEntry>) => direct({ bus: '0x100001000', ...e });
      const translated = await judge(
        [rec({ bus: '0x100001010', machine: '0x40500010', verdict: 'translated', at: 400 })],
        [iova({ mappedAt: 10, unmappedAt: 50 }), iova({ mappedAt: 100 })],
        nobody,
        moves,
      );
      assert.equal(translated.counts.misdirected, 1);
      assert.equal(translated.counts.stale, 0);
      // With no live mapping of the address, the same access is a use after unmap: stale.
      const after = await judge([access(60)], [direct({ mappedAt: 10, unmappedAt: 50 })], nobody);
      assert.equal(after.counts.stale, 1);
    });

    it("a move of another domain's pfn, or one before the mapping, changes nothing", async () => {
      const other: FrameMove[] = [
        { ...moves[0]!, domain: 1 },
        { ...moves[0]!, at: 50 },
      ];
      const v = await judge([at(400, '0x40500010')], mapped, nobody, other);
      assert.equal(v.counts.intended, 1);
    });
  });
});
