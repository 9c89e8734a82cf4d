// DMA API over an IOMMU (Linux dma-iommu.c): dom0 picks an IOVA from its own
// allocator and asks Xen to map its pfns there (Xen translates pfn → mfn,
// checks ownership and programs the IOMMU); unmapped after completion.
// Maps asked in the same turn of the event loop (the I/Os a workload starts
// together, or those a harvest completes) go out as one multi-range hypercall
// at contiguous IOVAs, as iommu_map_sg does for a scatter list; each caller
// still gets its own mapping. Unmaps go through the flush queue (lazy mode).
import {
  PAGE_SHIFT,
  addOffset,
  crossing,
  machineOfFrame,
  mfn,
  pageOffset,
  toHex,
  type BusAddr,
  type PseudoPhysAddr,
} from '@nestlab/addr';
import { TurnBatch } from '@nestlab/service-kit';
import { IommuMapHypercall, IommuUnmapHypercall, MAX_DMA_RANGES } from '@nestlab/protocol';
import { context, trace, type Context } from '@opentelemetry/api';
import { Dom0Error, errorInfo } from '../errors.js';
import { DOM0_DOMID } from '../mm/cpu-memory.js';
import { FlushQueue, LAZY_FLUSH, type FlushQueueOptions } from './flush-queue.js';
import { IovaAllocator } from './iova-allocator.js';
import {
  STREAMING_SYNC,
  pagesFor,
  type DmaDirection,
  type DmaEnv,
  type DmaHandle,
  type DmaMapping,
  type DmaPolicyImpl,
} from './policy.js';

/** pseudo-physical → IOVA, by a mapping dom0 had Xen program into the IOMMU. */
export const iommuMapIova = crossing({
  fn: 'iommuMapIova',
  from: 'pseudo_phys',
  to: 'bus',
  by: 'iommu',
});

type IommuHandle = Extract<DmaHandle, { kind: 'iova' }>;

/** One dma_map call waiting for this turn's hypercall. */
interface MapAsk {
  readonly pseudo: PseudoPhysAddr;
  readonly len: number;
  readonly dir: DmaDirection;
  readonly what: 'ring' | 'buffer';
  readonly pages: number;
  /** The caller's context: its 'dom0.dma.map' span when the I/O is traced. */
  readonly ctx: Context;
  readonly resolve: (m: DmaMapping) => void;
  readonly reject: (err: unknown) => void;
}

/** Failures after which Xen may or may not have mapped the list. */
const OUTCOME_UNKNOWN = new Set(['TIMEOUT', 'NO_RESPONDERS', 'IOMMU_UNAVAILABLE', 'BAD_REPLY']);

export interface IommuPolicyOptions {
  readonly iovas?: IovaAllocator;
  /** The unmap flush queue; strict: every unmap waits for its hypercall (sent at turn's end). */
  readonly flush?: FlushQueueOptions;
}

export function iommuPolicy(env: DmaEnv, o: IommuPolicyOptions = {}): DmaPolicyImpl {
  const opts = env.timeoutMs === undefined ? {} : { timeoutMs: env.timeoutMs };
  const iovas = o.iovas ?? new IovaAllocator();
  const flushOpts = o.flush ?? LAZY_FLUSH;
  // Maps asked in one turn go out together at its end; a batch that cannot go fails its callers.
  const asks = new TurnBatch<MapAsk>(
    (all) => {
      try {
        flushMaps(all);
      } catch (err) {
        for (const a of all) a.reject(err);
      }
    },
    () => undefined,
  );

  const unmaps = new FlushQueue(
    async (ranges) => {
      await env.bus.request(
        IommuUnmapHypercall,
        { domain: DOM0_DOMID, bdf: env.bdf, ranges },
        opts,
      );
    },
    (e) => {
      env.ledger.unmapped(BigInt(e.iova), e.pages); // acknowledged: later hits are stale
      iovas.release(e.iova, e.pages);
    },
    flushOpts,
  );

  function mapPages(
    pseudo: PseudoPhysAddr,
    len: number,
    dir: DmaDirection,
    what: 'ring' | 'buffer',
  ): Promise<DmaMapping> {
    const pages = pagesFor(pageOffset(pseudo) + len);
    return new Promise<DmaMapping>((resolve, reject) => {
      asks.add({ pseudo, len, dir, what, pages, ctx: context.active(), resolve, reject });
    });
  }

  function flushMaps(all: MapAsk[]): void {
    for (let i = 0; i < all.length; i += MAX_DMA_RANGES)
      void mapList(all.slice(i, i + MAX_DMA_RANGES));
  }

  /** One hypercall for the list, at one run of IOVAs (what the IOTLB fills best). */
  async function mapList(list: readonly MapAsk[]): Promise<void> {
    const total = list.reduce((n, a) => n + a.pages, 0);
    let base: BusAddr;
    try {
      base = iovas.alloc(total);
    } catch (err) {
      for (const a of list) a.reject(err);
      return;
    }
    let at = base;
    const placed = list.map((a) => {
      const iova = at;
      at = addOffset(at, a.pages << PAGE_SHIFT);
      return { a, iova };
    });
    let mfns: number[][];
    try {
      mfns = await send(placed);
    } catch (err) {
      // Xen may or may not have mapped them: these IOVAs are never handed out again.
      // A list Xen refused (all or nothing: nothing mapped) is tried buffer by
      // buffer, so one bad buffer fails only its own I/O.
      if (list.length > 1 && !OUTCOME_UNKNOWN.has(errorInfo(err).code)) {
        for (const a of list) void mapList([a]);
        return;
      }
      for (const a of list) a.reject(err);
      return;
    }
    placed.forEach(({ a, iova }, i) => {
      const got = mfns[i]!;
      if (got.length !== a.pages)
        a.reject(
          new Dom0Error('BAD_REPLY', `iommu_map mapped ${got.length} pages, asked ${a.pages}`),
        );
      else {
        try {
          a.resolve(mapped(a, iova, got));
        } catch (err) {
          a.reject(err);
        }
      }
    });
  }

  /** The hypercall, in the first caller's trace, linked to every traced caller's span. */
  async function send(placed: readonly { a: MapAsk; iova: BusAddr }[]): Promise<number[][]> {
    const ranges = placed.map(({ a, iova }) => {
      const firstPfn = Number(a.pseudo >> BigInt(PAGE_SHIFT));
      const pfns = Array.from({ length: a.pages }, (_, i) => firstPfn + i);
      return { iova: toHex(iova), pfns, write: a.dir !== 'to-device' };
    });
    const items = placed.flatMap(({ a }, i) => {
      const span = trace.getSpanContext(a.ctx);
      return span && trace.isSpanContextValid(span) ? [{ key: `dma.map.${i}`, span }] : [];
    });
    const parent = placed[0]!.a.ctx;
    const reply = await context.with(parent, () =>
      env.bus.request(
        IommuMapHypercall,
        { domain: DOM0_DOMID, bdf: env.bdf, ranges },
        items.length > 0 ? { ...opts, batch: { parent, items } } : opts,
      ),
    );
    const got = reply.head.ranges;
    if (got.length !== placed.length)
      throw new Dom0Error(
        'BAD_REPLY',
        `iommu_map answered ${got.length} of ${placed.length} ranges`,
      );
    return got.map((r) => r.mfns);
  }

  function mapped(a: MapAsk, iova: BusAddr, mfns: number[]): DmaMapping {
    const bus = addOffset(iova, pageOffset(a.pseudo));
    const t = iommuMapIova.ok(a.pseudo, bus);
    // The step already holds both addresses as hex: the ledger takes those strings.
    env.ledger.append({
      what: a.what,
      bus: t.step.to ?? toHex(bus),
      len: a.len,
      pseudo: t.step.from,
      mfns,
    });
    const handle: IommuHandle = { kind: 'iova', iova, pages: a.pages };
    return {
      pseudo: a.pseudo,
      len: a.len,
      dir: a.dir,
      bus,
      machine: machineOfFrame(mfn(mfns[0]!), pageOffset(a.pseudo)),
      by: 'iommu',
      steps: [t.step],
      bounce: null,
      handle,
    };
  }

  return {
    name: 'iommu',
    ...STREAMING_SYNC,
    deferredUnmap: !flushOpts.strict,
    async init() {},
    async allocCoherent(bytes) {
      const pages = env.pages.alloc(pagesFor(bytes));
      try {
        const mapping = await mapPages(pages.addr, bytes, 'bidirectional', 'ring');
        return { pages, bytes, mapping };
      } catch (err) {
        env.pages.release(pages);
        throw err;
      }
    },
    async freeCoherent(region) {
      const done = unmaps.add(iovaOf(region.mapping));
      // Ring memory goes back to the allocator: no waiting for the queue's timer.
      unmaps.flushSoon();
      await done;
      env.pages.release(region.pages);
    },
    map: (pseudo, len, dir) => mapPages(pseudo, len, dir, 'buffer'),
    unmap: (m) => unmaps.add(iovaOf(m)),
    unmapAll: (ms) => unmaps.addAll(ms.map(iovaOf)),
  };
}

function iovaOf(m: DmaMapping): IommuHandle {
  if (m.handle.kind !== 'iova')
    throw new Dom0Error('BAD_REPLY', `not an IOMMU mapping: ${m.handle.kind}`);
  return m.handle;
}
