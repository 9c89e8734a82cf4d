import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FaultLog } from './faults.js';

const f = {
  bdf: '0000:00:04.0',
  iova: '0x1000',
  write: false,
  reason: 'IOMMU_FAULT_NOT_PRESENT',
} as const;

describe('FaultLog', () => {
  it('keeps the newest entries when full and pages by sequence number', () => {
    const log = new FaultLog(3);
    for (let i = 0; i < 5; i++) log.record({ ...f, iova: `0x${i}000` });
    assert.equal(log.size, 3);
    const all = log.since(0, 10);
    assert.deepEqual(
      all.faults.map((x) => x.seq),
      [2, 3, 4],
    );
    assert.equal(all.next, 5);
    const page = log.since(3, 1);
    assert.deepEqual(
      page.faults.map((x) => x.iova),
      ['0x3000'],
    );
    assert.equal(page.next, 4);
    assert.deepEqual(log.since(5, 10), { faults: [], next: 5 });
    assert.deepEqual(log.since(99, 10), { faults: [], next: 5 }, 'a poller ahead is resynced');
  });

  it('forgets entries on clear but keeps counting', () => {
    const log = new FaultLog();
    log.record(f);
    log.clear();
    assert.equal(log.size, 0);
    assert.equal(log.record(f).seq, 1);
    assert.deepEqual(
      log.recent(5).map((x) => x.seq),
      [1],
    );
  });
});
