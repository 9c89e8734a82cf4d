import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { IommuMode } from '@nestlab/protocol';
import { Countdown } from '@nestlab/service-kit';
import { FaultLog } from '../faults.js';
import { LiveMaps } from '../live-maps.js';
import { PageTables } from '../page-table.js';
import { apply, asRecord, snapshot, type IommuMemory, type IommuRecord } from './iommu-journal.js';

const A = '0000:00:04.0';
const fresh = (): IommuMemory => ({
  mode: 'off' as IommuMode,
  tables: new PageTables(),
  faults: new FaultLog(),
  live: new LiveMaps(),
});
const dump = (m: IommuMemory) => ({
  mode: m.mode,
  pages: [...m.tables.entries()],
  live: m.live.list(),
  faults: m.faults.ordered(),
  next: m.faults.next,
});

describe('iommu journal', () => {
  const records: IommuRecord[] = [
    { t: 'cfg', mode: 'translate' },
    { t: 'map', bdf: A, page: 0x100000, mfns: [5, 6, 7], r: true, w: false },
    { t: 'map', bdf: A, page: 0x200000, mfns: [8], r: true, w: true },
    { t: 'unmap', bdf: A, page: 0x100001, pages: 1 },
    {
      t: 'fault',
      f: {
        seq: 41,
        bdf: A,
        iova: '0x1000',
        write: true,
        reason: 'IOMMU_FAULT_PERMISSION',
        atMs: 1,
      },
    },
  ];

  it('a snapshot rebuilds exactly the state the records built', () => {
    const live = fresh();
    for (const r of records) apply(live, asRecord(JSON.parse(JSON.stringify(r)))!);
    assert.equal(live.tables.lookup(A, 0x100001), undefined);
    assert.equal(live.faults.next, 42, 'the sequence goes on after the restored fault');
    const snap = JSON.parse(JSON.stringify(snapshot(live))) as unknown;
    const again = fresh();
    apply(again, asRecord(snap)!);
    assert.deepEqual(dump(again), dump(live));
    // The newest live mapping is still the newest after the round trip.
    assert.deepEqual(again.live.newest(again.tables), { bdf: A, first: 0x200000, pages: 1 });
  });

  it('refuses records of the wrong shape', () => {
    assert.equal(asRecord({ t: 'cfg', mode: 'on' }), undefined);
    assert.equal(asRecord({ t: 'map', bdf: A, page: 1, mfns: [-1], r: true, w: true }), undefined);
    assert.equal(asRecord({ t: 'fault', f: { seq: 1 } }), undefined);
    assert.equal(asRecord([]), undefined);
  });
});

describe('LiveMaps and Countdown', () => {
  it('the newest mapping skips those a partial unmap took the first page of', () => {
    const tables = new PageTables();
    const live = new LiveMaps();
    for (const [first, n] of [
      [10, 2],
      [20, 2],
    ] as const) {
      tables.map(
        A,
        first,
        Array.from({ length: n }, (_, i) => 100 + i),
        true,
        true,
      );
      live.add({ bdf: A, first, pages: n });
    }
    tables.unmap(A, 20, 1);
    assert.deepEqual(live.newest(tables), { bdf: A, first: 10, pages: 2 });
    live.remove(A, 0, 100);
    assert.equal(live.newest(tables), undefined);
  });

  it('lets `after` events pass, hits `count`, then is spent', () => {
    const c = new Countdown(2, 2);
    assert.deepEqual(
      Array.from({ length: 6 }, () => c.hit()),
      [false, false, true, true, false, false],
    );
    assert.equal(c.pending, 0);
  });
});
