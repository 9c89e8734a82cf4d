// A reference model of the walker's documented rules (chain-walker.ts) for the
// property tests: written from the rules, not from the walker, with its own
// little-endian decoding, over a snapshot of test memory. It says what
// popAvail must return; the properties compare the two on hostile rings.
import type { WalkOptions } from '../chain-walker.js';
import { VRING_DESC_F } from '../constants.js';
import type { SplitQueue } from '../split-queue.js';
import type { SparseTestMemory } from './sparse-test-memory.js';

const { NEXT, WRITE, INDIRECT } = VRING_DESC_F;
const TWO64 = 1n << 64n;

export interface PoppedChainShape {
  headIndex: number;
  buffers: [bigint, number, boolean][];
  descCount: number;
  indirect: boolean;
}
export type RefResult = { ok: true; value: PoppedChainShape | null } | { ok: false; code: string };

function bytesAt(mem: SparseTestMemory, addr: bigint, len: number): Uint8Array | null {
  if (len > 0 && addr + BigInt(len) > TWO64) return null;
  try {
    return mem.readSync(addr, len);
  } catch {
    return null;
  }
}
function decode(b: Uint8Array, at: number) {
  const v = new DataView(b.buffer, b.byteOffset + at, 16);
  return {
    addr: v.getBigUint64(0, true),
    len: v.getUint32(8, true),
    flags: v.getUint16(12, true),
    next: v.getUint16(14, true),
  };
}
const u16At = (b: Uint8Array) => b[0]! | (b[1]! << 8);

/**
 * What popAvail must return for this memory, per the rules in chain-walker.ts;
 * `stats.reads` counts the memory reads the walker must make to get there.
 */
export function referencePop(
  mem: SparseTestMemory,
  q: SplitQueue,
  last: number,
  o: WalkOptions,
  stats: { reads: number } = { reads: 0 },
): RefResult {
  const err = (code: string): RefResult => ({ ok: false, code });
  const read = (addr: bigint, len: number) => {
    stats.reads++;
    return bytesAt(mem, addr, len);
  };
  const idxBytes = read(q.avail + 2n, 2);
  if (!idxBytes) return err('MEMORY_UNREACHABLE');
  const pending = (u16At(idxBytes) - last) & 0xffff;
  if (pending > q.size) return err('AVAIL_IDX_TOO_FAR');
  if (pending === 0) return { ok: true, value: null };
  const slot = last % q.size;
  const headBytes = read(q.avail + 4n + BigInt(2 * slot), 2);
  if (!headBytes) return err('MEMORY_UNREACHABLE');
  const head = u16At(headBytes);
  if (head >= q.size) return err('DESC_INDEX_OUT_OF_RANGE');

  const maxEntries = o.maxIndirectEntries ?? 32768;
  const out: PoppedChainShape = { headIndex: head, buffers: [], descCount: 0, indirect: false };
  let table: Uint8Array | null = null;
  let i = head;
  let budget = q.size;
  let sawWritable = false;
  let total = 0;
  for (;;) {
    if (budget === 0) return err('RING_LOOP');
    budget--;
    out.descCount++;
    let d;
    if (table) d = decode(table, 16 * i);
    else {
      const raw = read(q.desc + BigInt(16 * i), 16);
      if (!raw) return err('MEMORY_UNREACHABLE');
      d = decode(raw, 0);
    }
    if (d.flags & INDIRECT) {
      if (table) return err('NESTED_INDIRECT');
      if (o.indirect === false) return err('INDIRECT_NOT_NEGOTIATED');
      if (d.flags & NEXT) return err('INDIRECT_WITH_NEXT');
      if (d.len === 0 || d.len % 16 !== 0 || d.len / 16 > maxEntries) {
        return err('INDIRECT_LEN_INVALID');
      }
      if (d.addr + BigInt(d.len) > TWO64) return err('ADDR_WRAP');
      table = read(d.addr, d.len);
      if (!table) return err('MEMORY_UNREACHABLE');
      out.indirect = true;
      budget = d.len / 16;
      i = 0;
      continue;
    }
    if (d.len > 0 && d.addr + BigInt(d.len) > TWO64) return err('ADDR_WRAP');
    const writable = (d.flags & WRITE) !== 0;
    if (!writable && sawWritable) return err('READABLE_AFTER_WRITABLE');
    sawWritable ||= writable;
    total += d.len;
    if (total > 0xffff_ffff) return err('CHAIN_TOO_LONG');
    out.buffers.push([d.addr, d.len, writable]);
    if (!(d.flags & NEXT)) return { ok: true, value: out };
    if (d.next >= (table ? table.byteLength / 16 : q.size)) return err('DESC_INDEX_OUT_OF_RANGE');
    i = d.next;
  }
}
