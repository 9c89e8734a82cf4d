// The DMA API as dom0 sees it (Linux dma_map_single / dma_alloc_coherent /
// dma_sync_single_for_*), one implementation per policy. The chosen policy
// decides what number the driver writes into the ring as a bus address, and
// the sync calls own every bounce copy: the block layer never looks at one.
import {
  PAGE_SIZE,
  toHex,
  type BusAddr,
  type MachineAddr,
  type PseudoPhysAddr,
  type TranslatedBy,
  type TranslationStep,
} from '@nestlab/addr';
import type { DmaPolicy as DmaPolicyName } from '@nestlab/protocol';
import { ATTR } from '@nestlab/telemetry';
import { SpanStatusCode, type Tracer } from '@opentelemetry/api';
import type { BusPort } from '../bus-port.js';
import type { CpuLoad, CpuStore } from '../mm/cpu-memory.js';
import type { P2mCopy } from '../mm/p2m-copy.js';
import type { PageAllocator, PageRun } from '../mm/page-allocator.js';
import type { DmaLedger } from './ledger.js';

export type DmaDirection = 'to-device' | 'from-device' | 'bidirectional';

export interface DmaMapping {
  readonly pseudo: PseudoPhysAddr;
  readonly len: number;
  readonly dir: DmaDirection;
  /** What the driver writes into the ring. */
  readonly bus: BusAddr;
  /** The machine address dom0 expects the device to reach, when it knows one. */
  readonly machine: MachineAddr | null;
  readonly by: TranslatedBy;
  readonly steps: readonly TranslationStep[];
  /** swiotlb-xen bounced the buffer: the device uses this slot instead of `pseudo`. */
  readonly bounce: PseudoPhysAddr | null;
  /** What the policy needs to unmap. */
  readonly handle: DmaHandle;
}

/** The policy-side state of one mapping, one kind per way of mapping. */
export type DmaHandle =
  /** Nothing to undo (legacy, or swiotlb-xen without a bounce). */
  | { readonly kind: 'direct' }
  /** swiotlb-xen bounce slot: `pages` pool pages from pfn `first`. */
  | { readonly kind: 'bounce'; readonly first: number; readonly pages: number }
  /** IOMMU mapping: `pages` pages at `iova`. */
  | { readonly kind: 'iova'; readonly iova: BusAddr; readonly pages: number };

export const DIRECT: DmaHandle = { kind: 'direct' };

export interface CoherentRegion {
  readonly pages: PageRun;
  readonly bytes: number;
  readonly mapping: DmaMapping;
}

export interface DmaEnv {
  readonly bus: BusPort;
  readonly p2m: P2mCopy;
  readonly pages: PageAllocator;
  readonly ledger: DmaLedger;
  readonly bdf: string;
  /** Per-request timeout for hypercalls. */
  readonly timeoutMs?: number;
}

export interface DmaPolicyImpl {
  readonly name: DmaPolicyName;
  /** swiotlb-xen exchanges its bounce pool here. */
  init(): Promise<void>;
  /** dma_alloc_coherent: zero-filling is the caller's job (it owns CPU stores). */
  allocCoherent(bytes: number): Promise<CoherentRegion>;
  freeCoherent(region: CoherentRegion): Promise<void>;
  map(pseudo: PseudoPhysAddr, len: number, dir: DmaDirection): Promise<DmaMapping>;
  /** Resolves once the mapping is gone (for a deferred unmap: once its flush was acknowledged). */
  unmap(m: DmaMapping): Promise<void>;
  /**
   * map() for a policy that maps without a hypercall (legacy, swiotlb-xen):
   * the same mapping, returned at once, so an untraced I/O awaits nothing.
   */
  readonly mapNow?: (pseudo: PseudoPhysAddr, len: number, dir: DmaDirection) => DmaMapping;
  /** unmap() of such a policy, done at once. */
  readonly unmapNow?: (m: DmaMapping) => void;
  /** unmap() of several mappings (an I/O's buffers) with one promise for them all. */
  readonly unmapAll?: (ms: readonly DmaMapping[]) => Promise<void>;
  /**
   * Unmaps are deferred (a lazy IOMMU flush queue): the driver completes an
   * I/O without waiting for them, and frees its pages once the unmap is done.
   */
  readonly deferredUnmap?: boolean;
  /**
   * dma_sync_single_for_device: the CPU stores that put `bytes` (the buffer's
   * content) where the device will read them — the buffer, and for a bounced
   * mapping its slot too (swiotlb_tbl_map_single copies to-device buffers).
   */
  syncForDevice(m: DmaMapping, bytes: Uint8Array): CpuStore[];
  /** Where the CPU loads what the device wrote into the mapping (the slot, when bounced). */
  deviceWritten(m: DmaMapping): CpuLoad;
  /**
   * dma_sync_single_for_cpu: given what was loaded from deviceWritten(), the
   * stores that bring it into the buffer (the copy out of a bounce slot; none otherwise).
   */
  syncForCpu(m: DmaMapping, loaded: Uint8Array): CpuStore[];
}

/** The sync calls of every policy: a bounced mapping is copied, any other is the buffer itself. */
export const STREAMING_SYNC: Pick<DmaPolicyImpl, 'syncForDevice' | 'deviceWritten' | 'syncForCpu'> =
  {
    syncForDevice: (m, bytes) => [
      { addr: m.pseudo, bytes },
      ...(m.bounce === null ? [] : [{ addr: m.bounce, bytes }]),
    ],
    deviceWritten: (m) => ({ addr: m.bounce ?? m.pseudo, len: m.len }),
    syncForCpu: (m, loaded) => (m.bounce === null ? [] : [{ addr: m.pseudo, bytes: loaded }]),
  };

export const pagesFor = (bytes: number): number => Math.max(1, Math.ceil(bytes / PAGE_SIZE));

/** dma_map_* inside a 'dom0.dma.map' span carrying the addresses of each layer. */
export async function tracedMap(
  tracer: Tracer,
  policy: DmaPolicyImpl,
  pseudo: PseudoPhysAddr,
  len: number,
  dir: DmaDirection,
  what: string,
): Promise<DmaMapping> {
  return tracer.startActiveSpan('dom0.dma.map', async (span) => {
    span.setAttribute(ATTR.addrPseudoPhys, toHex(pseudo));
    span.setAttribute(ATTR.dmaWhat, what);
    span.setAttribute(ATTR.dmaPolicy, policy.name);
    try {
      const m = await policy.map(pseudo, len, dir);
      span.setAttribute(ATTR.addrBus, toHex(m.bus));
      if (m.machine !== null) span.setAttribute(ATTR.addrMachine, toHex(m.machine));
      span.setAttribute(ATTR.translationBy, m.by);
      span.setAttribute(ATTR.translationFn, m.steps.map((s) => s.fn).join(' → '));
      if (m.bounce !== null) span.setAttribute(ATTR.dmaBounce, toHex(m.bounce));
      return m;
    } catch (err) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
      throw err;
    } finally {
      span.end();
    }
  });
}
