import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { toHex } from '@nestlab/addr';
import { DmaLedger } from './ledger.js';

const entry = (i: number) => ({
  what: 'buffer' as const,
  bus: toHex(0x1_0000_0000 + i * 0x1000),
  len: 4096,
  pseudo: toHex(0x2000_0000 + i * 0x1000),
  mfns: [i],
});

describe('DMA ledger', () => {
  it('keeps the newest 100,000 entries, numbered in order, past several bulk drops', () => {
    const ledger = new DmaLedger();
    const total = 250_003;
    for (let i = 0; i < total; i++) ledger.append(entry(i));
    assert.equal(ledger.size, total);
    // Asking from 0 starts at the oldest entry kept.
    const first = ledger.page(0, 3);
    assert.deepEqual(
      first.entries.map((e) => e.mfns[0]),
      [total - 100_000, total - 100_000 + 1, total - 100_000 + 2],
    );
    assert.equal(first.next, total - 100_000 + 3);
    const last = ledger.page(total - 2, 10);
    assert.deepEqual(
      last.entries.map((e) => e.mfns[0]),
      [total - 2, total - 1],
    );
    assert.equal(last.next, total);
    assert.deepEqual(ledger.page(total, 10), { entries: [], next: total });
  });

  it('stamps the entries of unmapped bus pages once, and only those', () => {
    const ledger = new DmaLedger();
    ledger.append(entry(0));
    ledger.append(entry(1));
    ledger.unmapped(0x1_0000_1000n, 1);
    const [a, b] = ledger.page(0, 2).entries;
    assert.equal(a!.unmappedAt, undefined);
    assert.equal(typeof b!.unmappedAt, 'number');
    assert.equal(typeof b!.mappedAt, 'number');
  });
});
