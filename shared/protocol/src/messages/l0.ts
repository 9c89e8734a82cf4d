import { Type, type Static } from '@sinclair/typebox';
import { Count, HexAddr, Obj, U16, U32 } from '../schema-kit.js';
import { eventMessage, requestMessage } from '../message.js';
import { Bdf, ClockMs, DomId, Empty, FeatureBits } from './common.js';

/** Who performs a CPU memory access: a domain's CPU (checked against frame ownership) or Xen. */
export const Requester = Type.Union([
  Obj({ kind: Type.Literal('cpu'), domain: DomId }),
  Obj({ kind: Type.Literal('xen') }),
]);
export type Requester = Static<typeof Requester>;

export const MAX_ACCESS_LEN = 1 << 20;
export const MemOp = Obj({
  op: Type.Union([Type.Literal('read'), Type.Literal('write')]),
  /** Machine (= L0 guest-physical) address; RAM or a device's MMIO BAR. */
  addr: HexAddr,
  len: Type.Integer({ minimum: 1, maximum: MAX_ACCESS_LEN }),
});
export type MemOp = Static<typeof MemOp>;

/**
 * CPU stores and loads at machine addresses, executed in order. Write payloads
 * are the frame's data, concatenated in op order; the reply's data is the read
 * results concatenated. Ops that land in a BAR are register accesses, so posted
 * ring writes and the doorbell travel in one message, ordered as on hardware.
 * On the first failing op the reply is an error naming its index; ops before
 * it have taken effect.
 */
export const MemAccess = requestMessage({
  name: 'l0.mem.access',
  service: 'l0',
  object: 'mem',
  verb: 'access',
  request: Obj({
    requester: Requester,
    ops: Type.Array(MemOp, { minItems: 1, maxItems: 4096 }),
    /** Trace-friendly labels of the I/Os this batch serves. */
    ioIds: Type.Optional(Type.Array(Type.String({ maxLength: 64 }), { maxItems: 4096 })),
    /**
     * The timing of ops that follow a doorbell (a write to a device's notify
     * register) in this message. 'drained': they run once the device has
     * drained the notified queue, so a used-ring read right after the doorbell
     * sees what the device completed (polling on submit), and later messages
     * wait behind them. L0 refuses a message with ops after a doorbell that does
     * not say so (ORDER_UNDECLARED, before the doorbell takes effect). A
     * doorbell as the last op is a posted write and needs no declaration.
     */
    afterDoorbell: Type.Optional(Type.Literal('drained')),
  }),
  reply: Obj({ readLens: Type.Array(Count) }),
  data: 'optional',
});

/** PCI configuration space access (what CF8/CFC or ECAM gives a kernel). */
export const PciConfig = requestMessage({
  name: 'l0.pci.config',
  service: 'l0',
  object: 'pci',
  verb: 'config',
  request: Obj({
    bdf: Bdf,
    op: Type.Union([Type.Literal('read'), Type.Literal('write')]),
    offset: Type.Integer({ minimum: 0, maximum: 4095 }),
    size: Type.Union([Type.Literal(1), Type.Literal(2), Type.Literal(4)]),
    value: Type.Optional(U32),
  }),
  reply: Obj({ value: U32 }),
});

/** Doorbell as its own event (the MMIO write inside MemAccess is the usual path). */
export const DeviceNotify = eventMessage({
  name: 'l0.dev.notify',
  service: 'l0',
  object: 'dev.{dev}',
  verb: 'notify',
  request: Obj({ queue: U16 }),
});

/** Xen tells L0 which machine frames a domain's CPU may touch (its validated page tables). */
export const CpuFrames = requestMessage({
  name: 'l0.mmu.update',
  service: 'l0',
  object: 'mmu',
  verb: 'update',
  request: Obj({
    domain: DomId,
    /** Full replacement of the domain's accessible frame ranges. */
    ranges: Type.Array(Obj({ first: Count, count: Count }), { maxItems: 1 << 16 }),
  }),
  reply: Obj({ frames: Count }),
});

export const IommuAttachment = Type.Union([
  /** No IOMMU in the device's path: bus addresses are machine addresses (verdict direct). */
  Type.Literal('none'),
  /** Behind the IOMMU; a virtio device goes through it only with ACCESS_PLATFORM (else bypass). */
  Type.Literal('virtio'),
  /** A hardware device: always translated by the IOMMU, whatever was negotiated. */
  Type.Literal('physical'),
  /** A platform IOMMU that exempts virtio devices without ACCESS_PLATFORM (ppc64). */
  Type.Literal('virtio-exempt'),
  /**
   * A virtio device on a bus the platform IOMMU translates, on a platform that
   * exempts virtio devices per bus: translated whatever was negotiated.
   */
  Type.Literal('virtio-translated-bus'),
]);
export type IommuAttachment = Static<typeof IommuAttachment>;

export const DeviceSetup = Obj({
  /** The device's name in L0, Xen and the IOMMU (its PCI address when the transport is PCI). */
  bdf: Bdf,
  /** virtio-pci modern (a BAR in the PCI hole) or virtio-mmio version 2 (a window L0 places, IRQ line 0). */
  transport: Type.Union([Type.Literal('pci'), Type.Literal('mmio')]),
  /**
   * virtio-mmio only: the register layout's Version. 2 (default) is virtio 1.0;
   * 1 is the legacy interface (GuestPageSize, QueuePFN; no FEATURES_OK) a 2014
   * driver met.
   */
  mmioVersion: Type.Optional(Type.Union([Type.Literal(1), Type.Literal(2)])),
  /** Features the device offers. */
  offer: FeatureBits,
  /** Refuse FEATURES_OK when the driver does not accept ACCESS_PLATFORM (QEMU iommu_platform=on). */
  requireAccessPlatform: Type.Boolean(),
  iommu: IommuAttachment,
  queueSizeMax: Type.Integer({ minimum: 1, maximum: 32768 }),
  /** Disk image size in bytes (a multiple of 512); the file is created sparse. */
  diskBytes: Type.Integer({ minimum: 512, maximum: 2 ** 40 }),
  /** Recreate the image (zeroed) instead of keeping its contents. */
  freshDisk: Type.Boolean(),
  /**
   * Bytes of device memory for the driver's rings (a physical card's own
   * memory, Rusty's "rings in the card's MMIO region"): BAR 2, announced by a
   * shared-memory capability. The device reaches it without DMA. Absent: none.
   */
  ringMemoryBytes: Type.Optional(Type.Integer({ minimum: 4096, maximum: 1 << 20 })),
  /** What GET_ID answers (virtio-blk: at most 20 bytes); default `nestlab-<bus:dev.fn>`. */
  serial: Type.Optional(Type.String({ minLength: 1, maxLength: 20 })),
});
export type DeviceSetup = Static<typeof DeviceSetup>;

/** One range of guest RAM in machine (L0 guest-physical) address space. */
export const RamRange = Obj({
  machine: HexAddr,
  bytes: Type.Integer({ minimum: 4096, maximum: 2 ** 46 }),
});
export type RamRange = Static<typeof RamRange>;

/**
 * Where guest RAM is: ranges in ascending address order, page-aligned, not
 * overlapping. Whatever lies between or after them is a hole: no RAM, and a
 * device ring placed there puts the device in NEEDS_RESET.
 */
export const MemoryMap = Obj({ ram: Type.Array(RamRange, { minItems: 1, maxItems: 16 }) });
export type MemoryMap = Static<typeof MemoryMap>;

/**
 * Resets L0 for a run: guest RAM, devices. RAM is emptied. Give either an
 * explicit `memoryMap`, or `ramBytes` as a shorthand for QEMU's pc layout
 * (RAM below 3 GiB, the rest above 4 GiB, the PCI hole between).
 */
export const L0Configure = requestMessage({
  name: 'l0.stack.configure',
  service: 'l0',
  object: 'stack',
  verb: 'configure',
  request: Obj({
    ramBytes: Type.Optional(Type.Integer({ minimum: 1 << 20, maximum: 2 ** 46 })),
    memoryMap: Type.Optional(MemoryMap),
    devices: Type.Array(DeviceSetup, { maxItems: 8 }),
  }),
  reply: Obj({
    memslots: Type.Array(Obj({ machine: HexAddr, hostPhys: HexAddr, bytes: Count })),
    devices: Type.Array(
      Obj({
        bdf: Bdf,
        bars: Type.Array(Obj({ index: Count, addr: HexAddr, bytes: Count })),
        /** A virtio-mmio device's window, as Linux's `virtio_mmio.device=<size>@<base>:<irq>` names it. */
        mmio: Type.Optional(Obj({ addr: HexAddr, bytes: Count, irq: Count })),
      }),
    ),
  }),
});

/** device-local: the device touched its own memory (rings in its BAR): no DMA, no IOMMU. */
export const DmaVerdict = Type.Union([
  Type.Literal('translated'),
  Type.Literal('bypass'),
  Type.Literal('direct'),
  Type.Literal('faulted'),
  Type.Literal('device-local'),
]);
export type DmaVerdict = Static<typeof DmaVerdict>;
/** Every verdict, in one order (a Record so a new verdict cannot be left out). */
const VERDICT_SET: Record<DmaVerdict, true> = {
  translated: true,
  bypass: true,
  direct: true,
  faulted: true,
  'device-local': true,
};
export const DMA_VERDICTS = Object.keys(VERDICT_SET) as readonly DmaVerdict[];

/** One device memory access (one page span) as the DMA engine performed or refused it. */
export const DmaRecord = Obj({
  seq: Count,
  bdf: Bdf,
  /** What the device was touching: ring parts, a request buffer, or an injected rogue access. */
  what: Type.Union(
    ['desc', 'indirect', 'avail', 'used', 'buffer', 'rogue'].map((w) => Type.Literal(w)),
  ),
  write: Type.Boolean(),
  bus: HexAddr,
  len: Count,
  machine: Type.Union([HexAddr, Type.Null()]),
  hostPhys: Type.Union([HexAddr, Type.Null()]),
  verdict: DmaVerdict,
  /** Error code when faulted or when the machine address hit no memory. */
  fault: Type.Optional(Type.String()),
  /** Trace id of the I/O being served, when known. */
  traceId: Type.Optional(Type.String()),
  /** The device span that made the access, so judges can attach to it in the trace. */
  spanId: Type.Optional(Type.String()),
  /** When the access happened (sharedClockMs): the oracle checks the mapping was live then. */
  at: Type.Optional(ClockMs),
});
export type DmaRecord = Static<typeof DmaRecord>;

export const DmaLog = requestMessage({
  name: 'l0.dma.log',
  service: 'l0',
  object: 'dma',
  verb: 'log',
  request: Obj({ since: Count, limit: Type.Integer({ minimum: 1, maximum: 2000 }) }),
  reply: Obj({ records: Type.Array(DmaRecord), next: Count, dropped: Count }),
});

/** Test/experiment hook: make a device DMA an arbitrary bus address, as a rogue or buggy device would. */
export const DeviceDma = requestMessage({
  name: 'l0.dev.dma',
  service: 'l0',
  object: 'dev',
  verb: 'dma',
  request: Obj({
    bdf: Bdf,
    bus: HexAddr,
    len: Type.Integer({ minimum: 1, maximum: 4096 }),
    write: Type.Boolean(),
  }),
  reply: Obj({ record: DmaRecord }),
  data: 'optional',
});

/** Device state for inspection and the report. */
export const DeviceState = requestMessage({
  name: 'l0.dev.state',
  service: 'l0',
  object: 'dev',
  verb: 'state',
  request: Obj({ bdf: Bdf }),
  reply: Obj({
    status: Type.Integer({ minimum: 0, maximum: 255 }),
    offered: FeatureBits,
    negotiated: FeatureBits,
    queues: Type.Array(
      Obj({
        index: Count,
        size: Count,
        enabled: Type.Boolean(),
        desc: HexAddr,
        driver: HexAddr,
        device: HexAddr,
        lastAvail: Count,
        used: Count,
      }),
    ),
    brokenReason: Type.Union([Type.String(), Type.Null()]),
    requests: Obj({ done: Count, ioerr: Count, unsupp: Count }),
  }),
});
export { Empty };
