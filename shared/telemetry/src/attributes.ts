/** Span attribute keys, one per address layer; never free-typed elsewhere. */
export const ATTR = {
  addrPseudoPhys: 'nestlab.addr.pseudo_phys',
  addrMachine: 'nestlab.addr.machine',
  addrBus: 'nestlab.addr.bus',
  addrHostPhys: 'nestlab.addr.host_phys',
  translationBy: 'nestlab.translation.by',
  translationFn: 'nestlab.translation.fn',
  dmaVerdict: 'nestlab.dma.verdict',
  frameOwner: 'nestlab.frame.owner',
  stack: 'nestlab.stack',
  ioId: 'nestlab.io.id',
  errorCode: 'nestlab.error.code',
  // One block I/O and its way through dom0's ring and DMA API.
  ioOp: 'nestlab.io.op',
  ioSector: 'nestlab.io.sector',
  ioBytes: 'nestlab.io.bytes',
  ioResubmitted: 'nestlab.io.resubmitted',
  ioLate: 'nestlab.io.late',
  blkStatus: 'nestlab.blk.status',
  ringHead: 'nestlab.ring.head',
  ringKicked: 'nestlab.ring.kicked',
  ringBatched: 'nestlab.ring.batched',
  ringHarvested: 'nestlab.ring.harvested',
  dmaWhat: 'nestlab.dma.what',
  dmaPolicy: 'nestlab.dma.policy',
  dmaBounce: 'nestlab.dma.bounce',
} as const;

/** Address-layer name (as in @nestlab/addr) → its attribute key. */
export const LAYER_ATTR = {
  pseudo_phys: ATTR.addrPseudoPhys,
  machine: ATTR.addrMachine,
  bus: ATTR.addrBus,
  host_phys: ATTR.addrHostPhys,
} as const;

/** OpenTelemetry messaging semantic conventions, as used for NATS hops. */
export const MESSAGING = {
  system: 'messaging.system',
  destination: 'messaging.destination.name',
  operationType: 'messaging.operation.type',
  operationName: 'messaging.operation.name',
  bodySize: 'messaging.message.body.size',
  clientId: 'messaging.client.id',
} as const;
export const MESSAGING_SYSTEM_NATS = 'nats';

/** Keys of an emulated device's spans (L0): the PCI function, its queues, requests and DMA. */
export const DEVICE_ATTR = {
  bdf: 'nestlab.device.bdf',
  queue: 'nestlab.virtio.queue',
  /** Chains one notify served. */
  chains: 'nestlab.virtio.chains',
  availIdx: 'nestlab.virtio.avail_idx',
  head: 'nestlab.virtio.head',
  /** Whether the batch that completed this chain raised a used-buffer interrupt. */
  interrupt: 'nestlab.virtio.interrupt',
  blkType: 'nestlab.blk.type',
  blkSector: 'nestlab.blk.sector',
  blkStatus: 'nestlab.blk.status',
  /** Which ring part (or buffer) a DMA access touched, and its direction. */
  dmaWhat: 'nestlab.dma.what',
  dmaWrite: 'nestlab.dma.write',
  /** A request's DMA accesses, and those beyond its span budget (counted, not traced). */
  dmaAccesses: 'nestlab.dma.accesses',
  dmaUntraced: 'nestlab.dma.untraced',
} as const;
