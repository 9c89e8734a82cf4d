import { ROOT_CONTEXT, TraceFlags, context, trace, type Tracer } from '@opentelemetry/api';
import { FrameOwners, IommuLookup } from '@nestlab/protocol';
import type { Bus } from '@nestlab/service-kit';
import { toHex } from '@nestlab/addr';
import { ATTR } from '@nestlab/telemetry';
import type { JudgedAccess } from './oracle.js';

const BY = {
  translated: 'iommu',
  bypass: 'bypass',
  direct: 'identity',
  faulted: 'iommu',
  // The device's own memory: no bus crossing at all.
  'device-local': 'identity',
} as const;
/** How many judged accesses per run are written back into their traces. */
export const MAX_ORACLE_SPANS = 16;

/**
 * Writes the oracle's verdict into the trace of the I/O that made the access,
 * as a child of the device's access span: all four layers, who translated,
 * and, for a misdirected access, whose frame it hit. This is what the
 * console's address ladder shows. The judgement asks Xen (frame table) and
 * the IOMMU (page tables, side-effect free) inside that span, so their view of
 * the access is part of the same trace.
 */
export async function emitOracleSpans(
  tracer: Tracer,
  judged: readonly JudgedAccess[],
  bus?: Bus,
): Promise<number> {
  let n = 0;
  for (const j of judged) {
    if (n >= MAX_ORACLE_SPANS) break;
    const r = j.record;
    if (!r.traceId || !/^[0-9a-f]{32}$/.test(r.traceId)) continue;
    const parent = trace.setSpanContext(ROOT_CONTEXT, {
      traceId: r.traceId,
      spanId: r.spanId && /^[0-9a-f]{16}$/.test(r.spanId) ? r.spanId : '0000000000000001',
      traceFlags: TraceFlags.SAMPLED,
      isRemote: true,
    });
    const pseudo = j.ledger
      ? toHex(BigInt(j.ledger.pseudo) + (BigInt(r.bus) - BigInt(j.ledger.bus)))
      : null;
    const span = tracer.startSpan(
      'oracle.judge',
      {
        attributes: {
          [ATTR.addrBus]: r.bus,
          ...(pseudo ? { [ATTR.addrPseudoPhys]: pseudo } : {}),
          ...(r.machine ? { [ATTR.addrMachine]: r.machine } : {}),
          ...(r.hostPhys ? { [ATTR.addrHostPhys]: r.hostPhys } : {}),
          [ATTR.translationBy]: BY[r.verdict],
          [ATTR.dmaVerdict]: r.verdict,
          'nestlab.dma.intent': j.intent,
          'nestlab.dma.what': r.what,
          ...(j.owner ? { [ATTR.frameOwner]: j.owner } : {}),
          ...(j.intendedMfn !== null
            ? {
                'nestlab.oracle.intended_machine': toHex(
                  (BigInt(j.intendedMfn) << 12n) | (BigInt(r.bus) & 0xfffn),
                ),
              }
            : {}),
        },
      },
      parent,
    );
    if (bus) {
      await context.with(trace.setSpan(parent, span), async () => {
        try {
          if (r.machine) {
            const owner = (
              await bus.request(FrameOwners, { mfns: [Number(BigInt(r.machine) >> 12n)] })
            ).head.owners[0];
            if (owner) span.setAttribute('nestlab.oracle.xen_owner', owner);
          }
          const iommu = (await bus.request(IommuLookup, { bdf: r.bdf, iova: r.bus })).head;
          span.setAttribute('nestlab.iommu.mode', iommu.mode);
          span.setAttribute('nestlab.iommu.mapped', iommu.mapped);
        } catch {
          // The verdict stands without the layers' second opinion.
        }
      });
    }
    span.end();
    n++;
  }
  return n;
}
