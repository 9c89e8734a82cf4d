import { P2mMoves, type FrameMove } from '@nestlab/protocol';
import type { Bus } from '@nestlab/service-kit';

/**
 * The frames Xen moved under dom0 (p2m-change), for `judge`. A Xen that does
 * not answer moved nothing the oracle can know of: none, and the judgement
 * stays what the ledger alone says.
 */
export async function frameMoves(bus: Bus): Promise<FrameMove[]> {
  try {
    return (await bus.request(P2mMoves, {}, { timeoutMs: 5000 })).head.moves;
  } catch {
    return [];
  }
}
