// XENMEM_exchange (xen/common/memory.c memory_exchange): trade a domain's
// frames for a machine-contiguous run. Planned first (all checks, nothing
// changed), then applied; revertible while L0 has not yet taken the new
// CPU frame set.
import { domOwner } from './frame-table.js';
import { mfnsOwnedBy } from './ownership.js';
import type { XenState } from './xen-state.js';
import { XenError } from '../errors.js';

export interface ExchangePlan {
  readonly domain: number;
  readonly pfns: readonly number[];
  readonly oldMfns: readonly number[];
  readonly mfnFirst: number;
}

const nextPow2 = (n: number) => 2 ** Math.ceil(Math.log2(n));

export function planExchange(
  state: XenState,
  domain: number,
  pfns: readonly number[],
): ExchangePlan {
  const seen = new Set<number>();
  for (const pfn of pfns) {
    if (seen.has(pfn)) throw new XenError('DUPLICATE_PFN', `pfn 0x${pfn.toString(16)} given twice`);
    seen.add(pfn);
  }
  const oldMfns = mfnsOwnedBy(state, domain, pfns);
  // The buddy allocator hands out naturally aligned extents of 2^order frames.
  const mfnFirst = state.frameTable.findFree(pfns.length, nextPow2(pfns.length));
  if (mfnFirst === undefined)
    throw new XenError('NO_MEMORY', `no free machine-contiguous run of ${pfns.length} frames`);
  return { domain, pfns, oldMfns, mfnFirst };
}

export function applyExchange(state: XenState, plan: ExchangePlan): void {
  const { p2m } = state.domain(plan.domain);
  state.frameTable.set(plan.mfnFirst, plan.pfns.length, domOwner(plan.domain));
  plan.pfns.forEach((pfn, i) => {
    p2m.set(pfn, 1, plan.mfnFirst + i);
    state.frameTable.set(plan.oldMfns[i]!, 1, 'free');
  });
}

export function revertExchange(state: XenState, plan: ExchangePlan): void {
  const { p2m } = state.domain(plan.domain);
  plan.pfns.forEach((pfn, i) => {
    p2m.set(pfn, 1, plan.oldMfns[i]!);
    state.frameTable.set(plan.oldMfns[i]!, 1, domOwner(plan.domain));
  });
  state.frameTable.set(plan.mfnFirst, plan.pfns.length, 'free');
}
