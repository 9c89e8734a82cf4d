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
