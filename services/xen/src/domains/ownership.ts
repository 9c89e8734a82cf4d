// The check behind every hypercall that names a domain's own pfns: each must
// be in the domain's P2M and its machine frame owned by that domain in the
// frame table (Xen: get_page_from_gfn + page owner check).
import { domOwner } from './frame-table.js';
import type { XenState } from './xen-state.js';
import { XenError } from '../errors.js';

export function mfnsOwnedBy(state: XenState, domain: number, pfns: readonly number[]): number[] {
  const { p2m } = state.domain(domain);
  const owner = domOwner(domain);
  return pfns.map((pfn) => {
    const mfn = p2m.lookup(pfn);
    if (mfn === undefined)
      throw new XenError('PFN_UNMAPPED', `pfn 0x${pfn.toString(16)} is not mapped in ${owner}`);
    const held = state.frameTable.ownerOf(mfn);
    if (held !== owner)
      throw new XenError(
        'NOT_OWNER',
        `pfn 0x${pfn.toString(16)} -> mfn 0x${mfn.toString(16)} belongs to ${held}, not ${owner}`,
      );
    return mfn;
  });
}
