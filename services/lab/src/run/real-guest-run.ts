// A real-guest run as the run store keeps it: `nestlab reference --device
// nestlab` booted a real Linux guest whose stock virtio_blk driver drove
// nestlab's device model over vhost-user. The guest's own view (did its I/O
// complete, what it read) sits beside nestlab's per-access view (the DMA log
// by verdict and by what, buffer bytes, the traces of its accesses).
import { Type, type Static } from '@sinclair/typebox';
import { Count, Obj, validator } from '@nestlab/protocol';
import type { VhostUserReport } from '@nestlab/reference';

export const REAL_GUEST_SOURCE = 'real guest via vhost-user';

/** Scenario ids name files in the run store: nothing that could climb out of it. */
export const SCENARIO_ID = Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,127}$' });
const Md5 = Type.Union([Type.String({ pattern: '^[0-9a-f]{32}$' }), Type.Null()]);
const Counts = Type.Record(Type.String({ maxLength: 64 }), Count);

export const RealGuestRun = Obj({
  kind: Type.Literal('real-guest'),
  source: Type.Literal(REAL_GUEST_SOURCE),
  scenario: SCENARIO_ID,
  /** QEMU's vIOMMU in front: every access should be `translated`, else `direct`. */
  viommu: Type.Boolean(),
  expectedVerdict: Type.Union([Type.Literal('direct'), Type.Literal('translated')]),
  savedAt: Type.String({ pattern: '^\\d{4}-\\d\\d-\\d\\dT[0-9:.]+Z$' }),
  outcome: Type.Union(['ok', 'misdirected-dma', 'failed', 'killed'].map((o) => Type.Literal(o))),
  elapsedMs: Count,
  guest: Obj({
    wrote: Type.Boolean(),
    read: Type.Boolean(),
    sumPattern: Md5,
    sumBack: Md5,
  }),
  expectedSum: Md5,
  nestlab: Obj({
    /** md5 of the disk image's first bytes, as many as the guest wrote. */
    imageSum: Md5,
    records: Count,
    byVerdict: Counts,
    byWhat: Counts,
    bufferBytesRead: Count,
    bufferBytesWritten: Count,
    traceIds: Type.Array(Type.String({ pattern: '^[0-9a-f]{32}$' }), { maxItems: 1000 }),
  }),
  /** Where the back-end's spans went (null: no endpoint, so no traces). */
  otlpEndpoint: Type.Union([Type.String({ maxLength: 2048 }), Type.Null()]),
  errors: Type.Array(Type.String()),
});
export type RealGuestRun = Static<typeof RealGuestRun>;
export const realGuestRunSchema = validator(RealGuestRun);

/** What the store keeps of a `--device nestlab` report (the rest is the row's own detail). */
export type SavedReport = Pick<
  VhostUserReport,
  'outcome' | 'expectedSum' | 'imageSum' | 'dma' | 'errors' | 'elapsedMs'
> & { guest: Pick<VhostUserReport['guest'], 'wrote' | 'read' | 'sumPattern' | 'sumBack'> };

/** The stored form of a `--device nestlab` report. */
export function realGuestRun(
  scenario: string,
  viommu: boolean,
  r: SavedReport,
  otlpEndpoint: string | null,
  savedAt = new Date(),
): RealGuestRun {
  const { records, byVerdict, byWhat, bufferBytesRead, bufferBytesWritten, traceIds } = r.dma;
  return {
    kind: 'real-guest',
    source: REAL_GUEST_SOURCE,
    scenario,
    viommu,
    expectedVerdict: viommu ? 'translated' : 'direct',
    savedAt: savedAt.toISOString(),
    outcome: r.outcome,
    elapsedMs: r.elapsedMs,
    guest: {
      wrote: r.guest.wrote,
      read: r.guest.read,
      sumPattern: r.guest.sumPattern,
      sumBack: r.guest.sumBack,
    },
    expectedSum: r.expectedSum,
    nestlab: {
      imageSum: r.imageSum,
      records,
      byVerdict,
      byWhat,
      bufferBytesRead,
      bufferBytesWritten,
      traceIds,
    },
    otlpEndpoint,
    errors: r.errors,
  };
}
