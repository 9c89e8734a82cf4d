// Rings in the card's own memory (issue 16, row 4; Rusty in 2014: a physical
// virtio card wants "the rings in the card's MMIO region, not allocated by
// the driver"). The driver lays its ring out in the memory the device's
// shared-memory capability announces, ioremapped (identity P2M for I/O
// memory), and gives the device that region's bus address. Its stores reach
// the card as MMIO writes; the card reads its rings without DMA. Buffers are
// untouched: they still go through the DMA policy.
import { machineAsBusIdentity, ioremapIdentity, pfnOf, toHex } from '@nestlab/addr';
import { Dom0Error } from '../errors.js';
import type { CoherentRegion } from '../dma/policy.js';
import { DIRECT, pagesFor } from '../dma/policy.js';
import type { P2mCopy } from '../mm/p2m-copy.js';
import type { VirtioCapRegion } from '../pci/enumerate.js';

/** The ring's region in device memory; throws when the card has too little of it. */
export function ringInDeviceMemory(
  shm: VirtioCapRegion | null,
  bytes: number,
  p2m: P2mCopy,
): CoherentRegion {
  if (shm === null)
    throw new Dom0Error('BAD_CAPABILITY', 'rings in device memory, but the device announces none');
  if (shm.length < bytes)
    throw new Dom0Error(
      'BAD_CAPABILITY',
      `the ring needs ${bytes} bytes; the device memory at ${toHex(shm.addr)} has ${shm.length}`,
    );
  const pseudo = ioremapIdentity(shm.addr);
  const bus = machineAsBusIdentity(shm.addr);
  if (!pseudo.ok || !bus.ok)
    throw new Dom0Error('BAD_REPLY', `cannot map device memory at ${toHex(shm.addr)}`);
  const pages = pagesFor(bytes);
  p2m.identity(pfnOf(pseudo.addr), pages);
  return {
    pages: { pfn: pfnOf(pseudo.addr), pages, addr: pseudo.addr },
    bytes,
    mapping: {
      pseudo: pseudo.addr,
      len: bytes,
      dir: 'bidirectional',
      bus: bus.addr,
      machine: shm.addr,
      by: 'identity',
      steps: [pseudo.step, bus.step],
      bounce: null,
      handle: DIRECT,
    },
  };
}
