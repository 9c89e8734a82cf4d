// The CPU stores that put one chain into the ring (virtqueue_add_split): its
// descriptors, or one descriptor pointing at an indirect table of them.
import { addOffset, type PseudoPhysAddr } from '@nestlab/addr';
import { DESC_SIZE, VRING_DESC_F, descOffset, encodeDesc } from '@nestlab/virtio';
import type { CoherentRegion } from '../dma/policy.js';
import type { CpuStore } from '../mm/cpu-memory.js';
import { INDIRECT_ENTRIES, type RingBuffer } from './ring-types.js';

/** Whether a chain of these buffers goes through an indirect table. */
export const usesIndirect = (pool: CoherentRegion | null, buffers: readonly RingBuffer[]) =>
  pool !== null && buffers.length > 1 && buffers.length <= INDIRECT_ENTRIES;

export function chainStores(
  ring: PseudoPhysAddr,
  pool: CoherentRegion | null,
  descs: readonly number[],
  buffers: readonly RingBuffer[],
): CpuStore[] {
  const head = descs[0]!;
  const flags = (b: RingBuffer, last: boolean) =>
    (b.writable ? VRING_DESC_F.WRITE : 0) | (last ? 0 : VRING_DESC_F.NEXT);
  if (pool !== null && usesIndirect(pool, buffers)) {
    // One table slot per head descriptor, so a table is never shared.
    const tableOff = head * INDIRECT_ENTRIES * DESC_SIZE;
    const table = new Uint8Array(buffers.length * DESC_SIZE);
    buffers.forEach((b, i) => {
      const last = i + 1 === buffers.length;
      const d = encodeDesc({
        addr: b.bus,
        len: b.len,
        flags: flags(b, last),
        next: last ? 0 : i + 1,
      });
      table.set(d, i * DESC_SIZE);
    });
    return [
      { addr: addOffset(pool.pages.addr, tableOff), bytes: table },
      {
        addr: addOffset(ring, descOffset(head)),
        bytes: encodeDesc({
          addr: addOffset(pool.mapping.bus, tableOff),
          len: table.byteLength,
          flags: VRING_DESC_F.INDIRECT,
          next: 0,
        }),
      },
    ];
  }
  return buffers.map((b, i) => {
    const last = i + 1 === buffers.length;
    return {
      addr: addOffset(ring, descOffset(descs[i]!)),
      bytes: encodeDesc({
        addr: b.bus,
        len: b.len,
        flags: flags(b, last),
        next: last ? 0 : descs[i + 1]!,
      }),
    };
  });
}
