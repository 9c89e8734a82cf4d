import { Type, type Static } from '@sinclair/typebox';
import { Count, HexAddr, Obj, U16, U32 } from '../schema-kit.js';
import { eventMessage, requestMessage } from '../message.js';
import { Bdf, ClockMs, FeatureBits } from './common.js';

/**
 * xen-swiotlb-rings-only: a half fix, the rings through swiotlb-xen (machine
 * addresses) and the buffers as legacy (pseudo-physical addresses).
 */
export const DmaPolicy = Type.Union([
  Type.Literal('legacy'),
  Type.Literal('xen-swiotlb'),
  Type.Literal('xen-swiotlb-rings-only'),
  Type.Literal('iommu'),
]);
export type DmaPolicy = Static<typeof DmaPolicy>;
/**
 * pre-2016: knows VERSION_1 but not ACCESS_PLATFORM (bit 33); modern: knows both.
 * proposal-2014: pre-2016 plus the never-standardized bit 25 (USE_BUS_MAPPING),
 * and uses the DMA API only when the device negotiated it.
 */
export const DriverGeneration = Type.Union([
  Type.Literal('pre-2016'),
  Type.Literal('modern'),
  Type.Literal('proposal-2014'),
]);
export type DriverGeneration = Static<typeof DriverGeneration>;

/**
 * A virtio-mmio device as the platform describes it: Linux's
 * `virtio_mmio.device=<size>@<base>:<irq>` (size with an optional K/M suffix,
 * base in hex), and the name Xen and the IOMMU know the device by.
 */
export const MmioPlatformDevice = Obj({
  device: Type.String({ pattern: '^(0x[0-9a-fA-F]+|[0-9]+)[KM]?@0x[0-9a-fA-F]{1,16}:[0-9]{1,4}$' }),
  bdf: Bdf,
});
export type MmioPlatformDevice = Static<typeof MmioPlatformDevice>;

export const Dom0Configure = requestMessage({
  name: 'dom0.stack.configure',
  service: 'dom0',
  object: 'stack',
  verb: 'configure',
  request: Obj({
    generation: DriverGeneration,
    policy: DmaPolicy,
    /** Features this driver would accept if offered (before generation filtering). */
    wanted: FeatureBits,
    queueSize: Type.Integer({ minimum: 1, maximum: 32768 }),
    /**
     * Where the driver lays out its rings: RAM from the DMA API (default), or
     * the device's own memory its shared-memory capability announces.
     */
    rings: Type.Optional(Type.Union([Type.Literal('ram'), Type.Literal('device-memory')])),
    /** virtio-mmio devices to probe instead of enumerating PCI; absent or empty: PCI. */
    mmioDevices: Type.Optional(Type.Array(MmioPlatformDevice, { maxItems: 8 })),
  }),
  reply: Obj({}),
});

/** Enumerate PCI, find the virtio-blk device, run the init sequence, set up the queue. */
export const DriverProbe = requestMessage({
  name: 'dom0.driver.probe',
  service: 'dom0',
  object: 'driver',
  verb: 'probe',
  request: Obj({}),
  reply: Obj({
    bdf: Type.Union([Type.String(), Type.Null()]),
    status: Type.Integer({ minimum: 0, maximum: 255 }),
    offered: FeatureBits,
    negotiated: FeatureBits,
    ok: Type.Boolean(),
    /** Why the driver gave up (e.g. FEATURES_OK refused), or null. */
    error: Type.Union([Obj({ code: Type.String(), message: Type.String() }), Type.Null()]),
    ring: Type.Union([Obj({ pseudo: HexAddr, bus: HexAddr, size: Count }), Type.Null()]),
  }),
});

/** The most IoRecords one report carries: a workload with `history` runs at most this many I/Os and FLUSHes. */
export const MAX_HISTORY = 20_000;

/** Records a workload's history would hold: its I/Os and, at most, one FLUSH per fsyncEvery writes. */
export function historyLength(w: { readonly ios: number; readonly fsyncEvery?: number }): number {
  const n = w.fsyncEvery ?? 0;
  return w.ios + (n > 0 ? Math.floor(w.ios / n) : 0);
}

/** The most I/Os whose history fits MAX_HISTORY records at this fsyncEvery. */
export function maxHistoryIos(fsyncEvery: number | undefined): number {
  let ios = MAX_HISTORY;
  while (historyLength({ ios, ...(fsyncEvery === undefined ? {} : { fsyncEvery }) }) > MAX_HISTORY)
    ios--;
  return ios;
}

/**
 * A fio-like job, declared once with its limits: JobRun carries it, and the
 * lab's scenario and experiment files take their workload fields from it.
 */
export const Workload = Obj({
  rw: Type.Union(['read', 'write', 'randread', 'randwrite', 'randrw'].map((k) => Type.Literal(k))),
  bs: Type.Integer({ minimum: 512, maximum: 1 << 20, multipleOf: 512 }),
  iodepth: Type.Integer({ minimum: 1, maximum: 1024 }),
  ios: Type.Integer({ minimum: 1, maximum: 10_000_000 }),
  seed: Type.Integer({ minimum: 0, maximum: 0xffffffff }),
  verify: Type.Boolean(),
  /**
   * Per-I/O deadline: an I/O not completed by then fails with TIMEOUT. At
   * least 10 ms: an I/O takes several NATS hops, so less only makes TIMEOUTs.
   */
  deadlineMs: Type.Integer({ minimum: 10, maximum: 600_000 }),
  /** Bytes of the disk the workload may touch, from sector 0. */
  spanBytes: Count,
  /**
   * Issue a FLUSH after every N writes (fio's fsync=N); 0 or absent: never.
   * A write is durable once a FLUSH issued after its completion completes.
   */
  fsyncEvery: Type.Optional(Count),
  /** Return every I/O's record in the report (experiments judge them); at most MAX_HISTORY records. */
  history: Type.Optional(Type.Boolean()),
});
export type Workload = Static<typeof Workload>;

/** What a block held or was given: the stamp of the write that produced it. */
export const BlockStampWire = Obj({ seed: U32, block: Count, generation: U32 });

/**
 * One I/O as the workload saw it. Writes carry the stamp they wrote; reads
 * what they found (`zeros`, `garbage`, or a stamp). `durable`: a FLUSH issued
 * after this write completed has completed too.
 */
export const IoRecord = Obj({
  i: Count,
  op: Type.Union([Type.Literal('read'), Type.Literal('write'), Type.Literal('flush')]),
  /** Block index (bs-sized) on the disk; 0 for a FLUSH. */
  block: Count,
  ok: Type.Boolean(),
  /** The error code when not ok. */
  code: Type.Optional(Type.String()),
  wrote: Type.Optional(BlockStampWire),
  read: Type.Optional(Type.Union([BlockStampWire, Type.Literal('zeros'), Type.Literal('garbage')])),
  /** For reads with verify: whether the workload accepted the data. */
  verified: Type.Optional(Type.Boolean()),
  durable: Type.Optional(Type.Boolean()),
  /** Milliseconds since the job started. */
  startMs: Count,
  endMs: Count,
});
export type IoRecord = Static<typeof IoRecord>;

export const IoReport = Obj({
  submitted: Count,
  completed: Count,
  verified: Count,
  corrupted: Count,
  failed: Count,
  /**
   * I/Os failed, by error code. Keys are codes (upper snake case) and nothing
   * else: a `__proto__` or `constructor` key is refused on receipt, so no
   * reader that merges these counts into an object can be steered by one.
   */
  errors: Type.Record(Type.String({ pattern: '^[A-Z][A-Z0-9_]{0,63}$' }), Count, {
    additionalProperties: false,
  }),
  latencyUs: Obj({ p50: Count, p99: Count }),
  elapsedMs: Count,
  traceIds: Type.Array(Type.String()),
  /** Every I/O, in submission order, when the workload asked for `history`. */
  history: Type.Optional(Type.Array(IoRecord, { maxItems: MAX_HISTORY })),
});
export type IoReport = Static<typeof IoReport>;

/** The report of a job that has not done anything (yet). */
export function emptyIoReport(): IoReport {
  return {
    submitted: 0,
    completed: 0,
    verified: 0,
    corrupted: 0,
    failed: 0,
    errors: {},
    latencyUs: { p50: 0, p99: 0 },
    elapsedMs: 0,
    traceIds: [],
  };
}

export const JobRun = requestMessage({
  name: 'dom0.job.run',
  service: 'dom0',
  object: 'job',
  verb: 'run',
  request: Workload,
  reply: IoReport,
});

/**
 * Stops the running job from submitting more I/Os: the ones in flight end as
 * usual and JobRun replies with what was done. `running` is false when no job ran.
 */
export const JobCancel = requestMessage({
  name: 'dom0.job.cancel',
  service: 'dom0',
  object: 'job',
  verb: 'cancel',
  request: Obj({}),
  reply: Obj({ running: Type.Boolean() }),
});

/** Every DMA-able region the driver handed the device: what the oracle checks accesses against. */
export const LedgerEntry = Obj({
  what: Type.Union([
    Type.Literal('ring'),
    Type.Literal('buffer'),
    Type.Literal('bounce'),
    Type.Literal('indirect'),
  ]),
  bus: HexAddr,
  len: Count,
  pseudo: HexAddr,
  /** Machine frame behind each page of the region, per the P2M when it was mapped. */
  mfns: Type.Array(Count),
  /** When it was mapped (sharedClockMs). */
  mappedAt: Type.Optional(ClockMs),
  /**
   * When its unmap was acknowledged (the IOMMU dropped it and invalidated the
   * IOTLB): a device access after this used a stale translation.
   */
  unmappedAt: Type.Optional(ClockMs),
});
export type LedgerEntry = Static<typeof LedgerEntry>;

export const DmaLedger = requestMessage({
  name: 'dom0.dma.ledger',
  service: 'dom0',
  object: 'dma',
  verb: 'ledger',
  request: Obj({ since: Count, limit: Type.Integer({ minimum: 1, maximum: 2000 }) }),
  reply: Obj({ entries: Type.Array(LedgerEntry), next: Count }),
});

/** An event channel notification delivered by Xen. */
export const EventChannel = eventMessage({
  name: 'dom0.evtchn',
  service: 'dom0',
  object: 'evtchn.{port}',
  verb: 'notify',
  request: Obj({ port: U16 }),
});
