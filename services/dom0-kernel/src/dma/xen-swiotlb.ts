// swiotlb-xen (Linux drivers/xen/swiotlb-xen.c): bus = machine via the P2M
// (no IOMMU: bus == machine). Coherent regions are made machine-contiguous
// with XENMEM_exchange (xen_create_contiguous_region); a streaming buffer
// that crosses machine-discontiguous frames is bounced through a pool that
// was exchanged at init (xen_swiotlb_init).
import {
  PAGE_SIZE,
  machineAsBusIdentity,
  pfn,
  pseudoPhysOfFrame,
  toHex,
  type BusAddr,
  type MachineAddr,
  type PseudoPhysAddr,
  type Translation,
  type TranslationStep,
} from '@nestlab/addr';
import { MemoryExchange } from '@nestlab/protocol';
import { Dom0Error } from '../errors.js';
import { DOM0_DOMID } from '../mm/cpu-memory.js';
import { consecutive, type P2mCopy } from '../mm/p2m-copy.js';
import type { PageRun } from '../mm/page-allocator.js';
import { RunAllocator } from '../mm/run-allocator.js';
import {
  DIRECT,
  STREAMING_SYNC,
  pagesFor,
  type DmaDirection,
  type DmaEnv,
  type DmaHandle,
  type DmaMapping,
  type DmaPolicyImpl,
} from './policy.js';

/** 256 KiB of bounce slots; enough for iodepth × bs of the lab's jobs, else NO_MEMORY. */
export const BOUNCE_POOL_PAGES = 64;
const MAX_EXCHANGE = 1024;

export function xenSwiotlbPolicy(env: DmaEnv, poolPages = BOUNCE_POOL_PAGES): DmaPolicyImpl {
  let pool: { run: PageRun; slots: RunAllocator } | null = null;

  async function makeContiguous(run: PageRun): Promise<void> {
    if (run.pages < 2 || env.p2m.machineContiguous(run.addr, run.pages * PAGE_SIZE)) return;
    if (run.pages > MAX_EXCHANGE) {
      throw new Dom0Error('NO_MEMORY', `cannot exchange ${run.pages} pages in one hypercall`);
    }
    const pfns = Array.from({ length: run.pages }, (_, i) => run.pfn + i);
    const reply = await env.bus.request(
      MemoryExchange,
      { domain: DOM0_DOMID, pfns },
      env.timeoutMs === undefined ? {} : { timeoutMs: env.timeoutMs },
    );
    env.p2m.applyExchange(reply.head.updates);
    if (!env.p2m.machineContiguous(run.addr, run.pages * PAGE_SIZE)) {
      throw new Dom0Error(
        'BAD_REPLY',
        `memory_exchange of pfns 0x${run.pfn.toString(16)}+${run.pages} left them machine-discontiguous`,
      );
    }
  }

  /** xen_phys_to_bus of `device` (the buffer, or its bounce slot). */
  const mapping = (
    pseudo: PseudoPhysAddr,
    device: PseudoPhysAddr,
    len: number,
    dir: DmaDirection,
    bounce: boolean,
    handle: DmaHandle = DIRECT,
  ): SwiotlbMapping => {
    const machine = env.p2m.machineOf(device);
    if (machine === null) {
      const p2m = env.p2m.translate(device);
      throw new Dom0Error('P2M_MISSING', `xen_phys_to_bus(${toHex(device)}): ${p2m.step.reason}`);
    }
    const id = machineAsBusIdentity(machine);
    if (!id.ok) throw new Dom0Error('BAD_REPLY', `machineAsBusIdentity(${toHex(machine)}) failed`);
    return new SwiotlbMapping(pseudo, device, len, dir, id, machine, env.p2m, bounce, handle);
  };

  const record = (what: 'ring' | 'buffer' | 'bounce', m: SwiotlbMapping, mfns?: number[]) => {
    const at = m.bounce ?? m.pseudo;
    env.ledger.append(
      {
        what,
        // The identity step already holds the bus address as hex.
        bus: m.busHex,
        len: m.len,
        pseudo: toHex(at),
        mfns: mfns ?? env.p2m.mfnsOf(at, m.len),
      },
      m.bus,
    );
  };

  /** dma_map_single: direct when the buffer is machine-contiguous, else through a bounce slot. */
  const mapNow = (pseudo: PseudoPhysAddr, len: number, dir: DmaDirection): DmaMapping => {
    const mfns = env.p2m.mfnsOf(pseudo, len);
    if (consecutive(mfns)) {
      const m = mapping(pseudo, pseudo, len, dir, false);
      record('buffer', m, mfns);
      return m;
    }
    // swiotlb_tbl_map_single: the buffer straddles machine-discontiguous frames.
    if (pool === null) throw new Dom0Error('NO_MEMORY', 'swiotlb-xen bounce pool not initialised');
    const offset = Number(pseudo & BigInt(PAGE_SIZE - 1));
    const slotPages = pagesFor(offset + len);
    const first = pool.slots.alloc(slotPages);
    const slot = pseudoPhysOfFrame(pfn(first), offset);
    const m = mapping(pseudo, slot, len, dir, true, { kind: 'bounce', first, pages: slotPages });
    record('bounce', m);
    return m;
  };

  const unmapNow = (m: DmaMapping): void => {
    const h = m.handle;
    if (h.kind === 'bounce' && pool !== null) pool.slots.release(h.first, h.pages);
  };

  return {
    name: 'xen-swiotlb',
    ...STREAMING_SYNC,
    async init() {
      if (pool !== null || poolPages < 1) return;
      const run = env.pages.alloc(poolPages);
      await makeContiguous(run);
      pool = {
        run,
        slots: new RunAllocator([{ first: run.pfn, count: run.pages }], 'bounce pages'),
      };
    },
    async allocCoherent(bytes) {
      const pages = env.pages.alloc(pagesFor(bytes));
      try {
        await makeContiguous(pages);
      } catch (err) {
        env.pages.release(pages);
        throw err;
      }
      const m = mapping(pages.addr, pages.addr, bytes, 'bidirectional', false);
      record('ring', m);
      return { pages, bytes, mapping: m };
    },
    async freeCoherent(region) {
      env.pages.release(region.pages);
    },
    async map(pseudo, len, dir) {
      return mapNow(pseudo, len, dir);
    },
    async unmap(m) {
      unmapNow(m);
    },
    mapNow,
    unmapNow,
  };
}

/**
 * A swiotlb-xen mapping. Its P2M step is made only when asked for (a traced
 * map's span): two hex strings per map that an untraced I/O never looks at.
 */
class SwiotlbMapping implements DmaMapping {
  readonly by = 'p2m';
  readonly bus: BusAddr;
  readonly bounce: PseudoPhysAddr | null;

  constructor(
    readonly pseudo: PseudoPhysAddr,
    /** What the device reaches: the buffer, or its bounce slot. */
    private readonly device: PseudoPhysAddr,
    readonly len: number,
    readonly dir: DmaDirection,
    private readonly identity: Translation<BusAddr> & { ok: true },
    readonly machine: MachineAddr,
    private readonly p2m: P2mCopy,
    bounced: boolean,
    readonly handle: DmaHandle,
  ) {
    this.bus = identity.addr;
    this.bounce = bounced ? device : null;
  }

  get busHex(): string {
    return this.identity.step.to ?? toHex(this.bus);
  }

  get steps(): TranslationStep[] {
    return [this.p2m.translate(this.device).step, this.identity.step];
  }
}
