// The register writes of a legacy (version 1) virtio-mmio driver, for the
// device suites: Linux vm_probe / virtio_dev_probe without FEATURES_OK, and
// vm_setup_vq's QueueNum, QueueAlign, QueuePFN for a ring image in the
// legacy layout.
import {
  VIRTIO_MMIO,
  VIRTIO_STATUS as S,
  legacyRingLayout,
  type FeatureSet,
} from '@nestlab/virtio';
import type { VirtioMmioRegister } from '@nestlab/virtio';
import type { RingImage } from '@nestlab/virtio/testing';

/** One register write (the shape of TestDriver's Op). */
interface Op {
  readonly op: 'write';
  readonly addr: bigint;
  readonly bytes: Uint8Array;
}

const PAGE = 4096;

const le32 = (v: number): Uint8Array => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0, true);
  return b;
};
const w = (base: bigint, reg: VirtioMmioRegister, v: number): Op => ({
  op: 'write',
  addr: base + BigInt(VIRTIO_MMIO[reg]),
  bytes: le32(v),
});

/** Reset, ACKNOWLEDGE, DRIVER, GuestPageSize, the one feature word. */
export const legacyNegotiateOps = (base: bigint, features: FeatureSet): Op[] => [
  w(base, 'STATUS', 0),
  w(base, 'STATUS', S.ACKNOWLEDGE),
  w(base, 'STATUS', S.ACKNOWLEDGE | S.DRIVER),
  w(base, 'GUEST_PAGE_SIZE', PAGE),
  w(base, 'DRIVER_FEATURES_SEL', 0),
  w(base, 'DRIVER_FEATURES', features.word(0)),
];

/** Queue 0 at the ring image's page, then DRIVER_OK; the image must be in the legacy layout. */
export function legacyStartOps(base: bigint, ring: RingImage): Op[] {
  const { desc, avail, used } = ring.queue;
  const l = legacyRingLayout(ring.size, PAGE);
  if (
    desc % BigInt(PAGE) !== 0n ||
    avail !== desc + BigInt(l.availOffset) ||
    used !== desc + BigInt(l.usedOffset)
  )
    throw new Error('a legacy device takes only a page-aligned ring in the legacy layout');
  return [
    w(base, 'QUEUE_SEL', 0),
    w(base, 'QUEUE_NUM', ring.size),
    w(base, 'QUEUE_ALIGN', PAGE),
    w(base, 'QUEUE_PFN', Number(desc / BigInt(PAGE))),
    w(base, 'STATUS', S.ACKNOWLEDGE | S.DRIVER | S.DRIVER_OK),
  ];
}
