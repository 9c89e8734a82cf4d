// The pre-4.6 virtio_ring: no DMA API at all. The driver's own idea of a
// physical address goes into the ring (the 2014 bug; docs/DOMAIN.md,
// "The problem"). This file is the only user of legacyPhysAsBus.
import { legacyPhysAsBus, toHex, type PseudoPhysAddr } from '@nestlab/addr';
import { Dom0Error } from '../errors.js';
import {
  DIRECT,
  STREAMING_SYNC,
  pagesFor,
  type CoherentRegion,
  type DmaDirection,
  type DmaEnv,
  type DmaMapping,
  type DmaPolicyImpl,
} from './policy.js';

export function legacyPolicy(env: DmaEnv): DmaPolicyImpl {
  const mapping = (pseudo: PseudoPhysAddr, len: number, dir: DmaDirection): DmaMapping => {
    const t = legacyPhysAsBus(pseudo);
    if (!t.ok) throw new Dom0Error('BAD_REPLY', `legacyPhysAsBus(${toHex(pseudo)}) failed`);
    return {
      pseudo,
      len,
      dir,
      bus: t.addr,
      // dom0 does not know what the device will reach: that is the bug.
      machine: null,
      by: t.step.by,
      steps: [t.step],
      bounce: null,
      handle: DIRECT,
    };
  };
  // The step already holds both addresses as hex: the ledger takes those strings.
  const record = (what: 'ring' | 'buffer', m: DmaMapping) =>
    env.ledger.append(
      {
        what,
        bus: m.steps[0]?.to ?? toHex(m.bus),
        len: m.len,
        pseudo: m.steps[0]?.from ?? toHex(m.pseudo),
        mfns: env.p2m.mfnsOf(m.pseudo, m.len),
      },
      m.bus,
    );
  const mapNow = (pseudo: PseudoPhysAddr, len: number, dir: DmaDirection): DmaMapping => {
    const m = mapping(pseudo, len, dir);
    record('buffer', m);
    return m;
  };
  return {
    name: 'legacy',
    ...STREAMING_SYNC,
    async init() {},
    async allocCoherent(bytes): Promise<CoherentRegion> {
      const pages = env.pages.alloc(pagesFor(bytes));
      const m = mapping(pages.addr, bytes, 'bidirectional');
      record('ring', m);
      return { pages, bytes, mapping: m };
    },
    async freeCoherent(region) {
      env.pages.release(region.pages);
    },
    async map(pseudo, len, dir) {
      return mapNow(pseudo, len, dir);
    },
    async unmap() {},
    mapNow,
    unmapNow: () => undefined,
  };
}
