import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DmaLog } from './dma-log.js';

const rec = (bus: string) => ({
  bdf: '0000:00:04.0',
  what: 'buffer',
  write: false,
  bus,
  len: 1,
  machine: bus,
  hostPhys: bus,
  verdict: 'direct' as const,
});

describe('DmaLog', () => {
  it('pages through records and counts what was overwritten', () => {
    const log = new DmaLog(4);
    for (let i = 0; i < 6; i++) log.append(rec(`0x${i}`));
    assert.equal(log.size, 4);
    const p = log.page(0, 3);
    assert.deepEqual(
      p.records.map((r) => r.seq),
      [2, 3, 4],
    );
    assert.equal(p.dropped, 2);
    assert.equal(p.next, 5);
    const q = log.page(p.next, 10);
    assert.deepEqual(
      q.records.map((r) => r.seq),
      [5],
    );
    assert.equal(q.dropped, 0);
    assert.deepEqual(log.page(q.next, 10), { records: [], next: 6, dropped: 0 });
  });

  it('starts a new run at seq 0 after clear()', () => {
    const log = new DmaLog(4);
    for (let i = 0; i < 3; i++) log.append(rec(`0x${i}`));
    log.clear();
    assert.equal(log.size, 0);
    assert.deepEqual(log.page(0, 10), { records: [], next: 0, dropped: 0 });
    assert.equal(log.append(rec('0x9')).seq, 0);
    assert.deepEqual(
      log.page(0, 10).records.map((r) => r.bus),
      ['0x9'],
    );
  });

  it('keeps every field of a record, optional ones only when set', () => {
    const log = new DmaLog(2);
    const full = {
      ...rec('0xfffff000'),
      what: 'used' as const,
      write: true,
      machine: null,
      hostPhys: '0x1234000',
      verdict: 'faulted' as const,
      fault: 'IOMMU_FAULT_NOT_PRESENT',
      traceId: 'a'.repeat(32),
      spanId: 'b'.repeat(16),
      at: 1764000000123.25,
    };
    log.append(full);
    log.append({ ...rec('0xffffffffffffffff'), bdf: '0000:00:05.0' });
    const [a, b] = log.page(0, 10).records;
    assert.deepEqual(a, { seq: 0, ...full });
    assert.deepEqual(b, { seq: 1, ...rec('0xffffffffffffffff'), bdf: '0000:00:05.0' });
    log.append(rec('0x1'));
    assert.equal(log.record(0), undefined, 'overwritten');
    assert.equal(log.record(3), undefined, 'not written yet');
    assert.equal(log.record(2)?.bus, '0x1');
  });
});
