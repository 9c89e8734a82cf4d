// The p2m-change domain fault (issue #8): balloon-like, Xen moves the
// pseudo-physical frame behind dom0's newest DMA-mapped page to another
// machine frame: contents copied, P2M, M2P and ownership updated, L0 told
// the new CPU frame set, as when a page is exchanged under a driver that
// kept its machine address. The IOMMU mapping is left alone: the device
// still targets the old frame, which now belongs to nobody.
import { toHex } from '@nestlab/addr';
import {
  MAX_FRAME_MOVES,
  MemAccess,
  P2mMoves,
  sharedClockMs,
  type FrameMove,
} from '@nestlab/protocol';
import { Countdown, DomainFaultError, afterTurn } from '@nestlab/service-kit';
import type { DmaMap } from '../domains/dma-maps.js';
import { domOwner } from '../domains/frame-table.js';
import { XenError } from '../errors.js';
import { movePfn } from '../persist/xen-journal.js';
import { L0_TIMEOUT_MS, remoteFailure, type XenService } from '../xen-service.js';

const DOM0 = 0;
const FRAME = 4096;
const hex = (n: number) => `0x${n.toString(16)}`;

export function registerP2mChange(xen: XenService): void {
  const { faults, log, bus } = xen.ctx;
  // The oracle asks for these: an access through the old mapping after a
  // move hits a frame the pfn no longer has.
  const moves: FrameMove[] = [];
  const moved = (m: FrameMove) => {
    moves.push(m);
    if (moves.length > MAX_FRAME_MOVES) moves.shift();
  };
  bus.handle(P2mMoves, () => ({ body: { moves } }));

  faults.on('p2m-change', async (req) => {
    const state = xen.current;
    if (!state?.config.present)
      throw new DomainFaultError(
        'FAULT_NOT_APPLICABLE',
        state ? 'no Xen (present=false): there is no P2M to change' : 'xen is not configured',
      );
    let left = req.count ?? 1;
    const after = req.after ?? 0;
    const newest = state.dmaMaps.newestOf(DOM0);
    if (after === 0 && newest) {
      moved(await xen.serial.run(() => movePage(xen, newest)));
      left--;
    }
    const arm = new Countdown(after, left);
    // Strikes right after the map's reply: the driver holds the machine address.
    xen.onMapped = (m) => {
      if (m.domain !== DOM0 || !arm.hit()) return;
      afterTurn(
        () => xen.serial.run(() => movePage(xen, m)).then(moved),
        (err) => log.warn({ err: (err as Error).message }, 'p2m-change failed'),
      );
    };
    return left;
  });
}

/** Moves the first pfn of `m` to a free machine frame; says what moved, and when. */
async function movePage(xen: XenService, m: DmaMap): Promise<FrameMove> {
  const state = xen.require();
  const pfn = m.pfns[0]!;
  const from = state.domain(m.domain).p2m.lookup(pfn);
  if (from === undefined || state.frameTable.ownerOf(from) !== domOwner(m.domain))
    throw new XenError('PFN_UNMAPPED', `pfn ${hex(pfn)} is no longer dom${m.domain}'s`);
  const to = state.frameTable.findFree(1);
  if (to === undefined) throw new XenError('NO_MEMORY', 'no free machine frame to move to');
  const xenCpu = { kind: 'xen' } as const;
  let page: Uint8Array;
  try {
    const read = await xen.ctx.bus.request(
      MemAccess,
      { requester: xenCpu, ops: [{ op: 'read', addr: toHex(from * FRAME), len: FRAME }] },
      { timeoutMs: L0_TIMEOUT_MS },
    );
    page = read.data;
    await xen.ctx.bus.request(
      MemAccess,
      { requester: xenCpu, ops: [{ op: 'write', addr: toHex(to * FRAME), len: FRAME }] },
      { timeoutMs: L0_TIMEOUT_MS, data: page },
    );
  } catch (err) {
    throw remoteFailure('L0_UNAVAILABLE', 'copying the page failed', err, false);
  }
  const move = { domain: m.domain, pfn, from, to };
  movePfn(state, move);
  // From here the pfn is at `to`: a device access through the mapping is to the wrong frame.
  const at = sharedClockMs();
  try {
    await xen.pushCpuFrames(state, m.domain);
  } catch (err) {
    // L0 still enforces the old frame set: undo, so Xen and L0 agree.
    movePfn(state, { ...move, from: to, to: from });
    throw err;
  }
  xen.persist({ t: 'move', ...move });
  xen.ctx.faults.fired(
    'p2m-change',
    `dom${m.domain} pfn ${hex(pfn)}: mfn ${hex(from)} -> ${hex(to)} (DMA-mapped for ${m.bdf} at iova ${m.iova}; the IOMMU still points at ${hex(m.mfns[0] ?? from)})`,
  );
  return { ...move, at };
}
