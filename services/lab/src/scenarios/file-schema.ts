import { Type, type Static } from '@sinclair/typebox';
import { Obj, Workload } from '@nestlab/protocol';
import { COMMON_FEATURE_NAMES, BLK_FEATURE_NAMES } from '@nestlab/virtio';
import { GROUPS, OUTCOMES } from './scenario.js';

const FEATURE_NAMES = [...COMMON_FEATURE_NAMES.values(), ...BLK_FEATURE_NAMES.values()];
const Feature = Type.Union(FEATURE_NAMES.map((n) => Type.Literal(n)));
const Size = Type.String({ pattern: '^[0-9]+(KiB|MiB|GiB)$' });
const Id = Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,63}$' });
/** A PCI bus as segment:bus, e.g. 0000:01. */
const PciBus = Type.String({ pattern: '^[0-9a-f]{4}:[0-9a-f]{2}$' });

/**
 * A scenario file. Every row of the seed's matrix must be expressible here,
 * including those the runner cannot run yet (grant DMA, balloon):
 * the runner says so clearly instead of the schema refusing them.
 */
export const ScenarioFile = Obj({
  id: Id,
  title: Type.String({ minLength: 1, maxLength: 120 }),
  expected: Type.Union(OUTCOMES.map((o) => Type.Literal(o))),
  explanation: Type.String({ minLength: 1 }),
  /** Which of the thread's options the row illustrates (the console groups by it). */
  group: Type.Optional(Type.Union(GROUPS.map((g) => Type.Literal(g.id)))),
  /** The sentence of the 2014 thread the row illustrates, word for word, and who wrote it. */
  quote: Type.Optional(
    Obj({
      who: Type.String({ minLength: 1, maxLength: 80 }),
      said: Type.String({ minLength: 1, maxLength: 400 }),
    }),
  ),
  stack: Obj({
    /** Layers under the driver: L0 alone (a plain KVM guest), or L0 running Xen. */
    layers: Type.Union([Type.Literal('l0'), Type.Literal('l0+xen')]),
    domain: Type.Union([
      Type.Literal('plain-guest'),
      Type.Literal('pv-dom0'),
      Type.Literal('pv-domu'),
    ]),
    machine: Type.Optional(Size),
    dom0: Type.Optional(Size),
  }),
  transport: Type.Union([Type.Literal('pci'), Type.Literal('mmio')]),
  /** virtio-mmio's Version register: 2 (default, virtio 1.0) or 1 (legacy: GuestPageSize, QueuePFN). */
  mmioVersion: Type.Optional(Type.Union([Type.Literal(1), Type.Literal(2)])),
  device: Obj({
    /** virtio: emulated by L0; physical: a hardware virtio card, always behind the platform IOMMU. */
    kind: Type.Union([Type.Literal('virtio'), Type.Literal('physical')]),
    offer: Type.Array(Feature, { uniqueItems: true }),
    /** Refuse FEATURES_OK unless the driver accepts ACCESS_PLATFORM (QEMU iommu_platform=on). */
    requireAccessPlatform: Type.Boolean(),
    queueSize: Type.Optional(Type.Integer({ minimum: 1, maximum: 32768 })),
    /** Device memory for rings (a card's BAR, PCI only), e.g. 64KiB; absent: none. */
    ringMemory: Type.Optional(Size),
  }),
  iommu: Obj({
    present: Type.Boolean(),
    mode: Type.Optional(Type.Union([Type.Literal('translate'), Type.Literal('passthrough')])),
    /** The ppc64 platform quirk: virtio devices without ACCESS_PLATFORM are exempt from translation. */
    exemptsVirtio: Type.Optional(Type.Boolean()),
    /**
     * An x86-like platform that exempts virtio devices per bus (Paolo's
     * question in the thread): a virtio device without ACCESS_PLATFORM on one
     * of these buses bypasses the IOMMU; on any other bus it is translated.
     */
    virtioExemptBuses: Type.Optional(Type.Array(PciBus, { uniqueItems: true, maxItems: 16 })),
  }),
  driver: Obj({
    /** proposal-2014: knows bit 25 USE_BUS_MAPPING and uses the DMA API only when it was negotiated. */
    generation: Type.Union([
      Type.Literal('pre-2016'),
      Type.Literal('modern'),
      Type.Literal('proposal-2014'),
    ]),
    dma: Type.Union([
      Type.Literal('legacy'),
      Type.Literal('xen-swiotlb'),
      /** A half fix: rings through swiotlb-xen, buffers' pseudo-physical addresses as legacy. */
      Type.Literal('xen-swiotlb-rings-only'),
      Type.Literal('iommu'),
      Type.Literal('grant'),
    ]),
    /** Where the driver lays out its rings: RAM via the DMA API (default) or the device's memory. */
    rings: Type.Optional(Type.Union([Type.Literal('ram'), Type.Literal('device-memory')])),
    /** Features the driver would take if offered; default: all it knows. */
    wants: Type.Optional(Type.Array(Feature, { uniqueItems: true })),
  }),
  /** Any of these JobRun workload fields, with JobRun's limits. */
  workload: Type.Optional(
    Type.Partial(Type.Pick(Workload, ['ios', 'iodepth', 'bs', 'rw', 'verify', 'deadlineMs'])),
  ),
  /** Events during the run (balloon-during-dma). */
  events: Type.Optional(
    Type.Array(Obj({ balloon: Obj({ pinning: Type.Boolean() }) }), { maxItems: 16 }),
  ),
  checks: Type.Optional(
    Obj({
      /** Every device access must be translated by the IOMMU. */
      allTranslated: Type.Optional(Type.Boolean()),
      /** Every device access must bypass the IOMMU. */
      allBypassed: Type.Optional(Type.Boolean()),
      /** After the workload, make the device touch a bus address no mapping covers. */
      rogueProbe: Type.Optional(Type.Boolean()),
      /** Disk and RAM must be unchanged by the run (no DMA performed). */
      nothingTouched: Type.Optional(Type.Boolean()),
    }),
  ),
});
export type ScenarioFile = Static<typeof ScenarioFile>;
