import { ATTR_SERVER_ADDRESS, ATTR_SERVER_PORT } from '@opentelemetry/semantic-conventions';
import {
  ATTR_MESSAGING_CLIENT_ID,
  ATTR_MESSAGING_DESTINATION_NAME,
  ATTR_MESSAGING_DESTINATION_TEMPLATE,
  ATTR_MESSAGING_MESSAGE_BODY_SIZE,
  ATTR_MESSAGING_OPERATION_NAME,
  ATTR_MESSAGING_OPERATION_TYPE,
  ATTR_MESSAGING_SYSTEM,
  MESSAGING_OPERATION_TYPE_VALUE_PROCESS,
  MESSAGING_OPERATION_TYPE_VALUE_SEND,
} from '@opentelemetry/semantic-conventions/incubating';

/** Span attribute keys of nestlab's own; never free-typed elsewhere. */
export const ATTR = {
  addrPseudoPhys: 'nestlab.addr.pseudo_phys',
  addrMachine: 'nestlab.addr.machine',
  addrBus: 'nestlab.addr.bus',
  addrHostPhys: 'nestlab.addr.host_phys',
  translationBy: 'nestlab.translation.by',
  translationFn: 'nestlab.translation.fn',
  dmaVerdict: 'nestlab.dma.verdict',
  /** Ranges in one multi-range map/unmap hypercall. */
  dmaRanges: 'nestlab.dma.ranges',
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

/**
 * OpenTelemetry messaging semantic conventions, as used for NATS hops; the
 * keys are the semantic-conventions package's (messaging is still in its
 * incubating entry point).
 */
export const MESSAGING = {
  system: ATTR_MESSAGING_SYSTEM,
  destination: ATTR_MESSAGING_DESTINATION_NAME,
  /** The subject with its variable tokens as `{name}` (stack, device…): low cardinality. */
  destinationTemplate: ATTR_MESSAGING_DESTINATION_TEMPLATE,
  operationType: ATTR_MESSAGING_OPERATION_TYPE,
  operationName: ATTR_MESSAGING_OPERATION_NAME,
  bodySize: ATTR_MESSAGING_MESSAGE_BODY_SIZE,
  clientId: ATTR_MESSAGING_CLIENT_ID,
} as const;

/** The NATS server a hop went through. */
export const SERVER = { address: ATTR_SERVER_ADDRESS, port: ATTR_SERVER_PORT } as const;

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

/** `messaging.operation.type` values nestlab uses. */
export const MESSAGING_OPERATION = {
  send: MESSAGING_OPERATION_TYPE_VALUE_SEND,
  process: MESSAGING_OPERATION_TYPE_VALUE_PROCESS,
} as const;

/** A messaging span's name: `{operation} {destination template}` (OTel messaging spans). */
export const messagingSpanName = (operation: string, template: string) =>
  `${operation} ${template}`;
