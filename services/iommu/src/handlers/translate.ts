// The device side: translations (with the following mapped run for the
// IOTLB), side-effect-free lookups for the oracle, and the fault log.
import { parseHex, toHex } from '@nestlab/addr';
import { IommuFaults, IommuLookup, IommuTranslate } from '@nestlab/protocol';
import { recordStep } from '@nestlab/telemetry';
import { trace } from '@opentelemetry/api';
import { IommuError } from '../errors.js';
import type { IommuService } from '../iommu-service.js';
import { pageOf, translate } from '../translate.js';

const FAULTS_PER_REPLY = 1000;

export function registerTranslate(iommu: IommuService): void {
  const { bus } = iommu.ctx;

  bus.handle(IommuTranslate, ({ head }) => {
    try {
      const iova = parseHex('bus', head.iova);
      const r = translate(
        iommu.mode,
        iommu.tables,
        iommu.faults,
        { bdf: head.bdf, iova, write: head.write },
        // The step (hex strings) is built only for a span that records it.
        trace.getActiveSpan()?.isRecording() ? recordStep : null,
      );
      iommu.m.translations.inc({ mode: iommu.mode, result: 'ok' });
      const following = r.by === 'iommu' ? iommu.following(head.bdf, pageOf(iova)) : [];
      return {
        body: {
          machine: toHex(r.machine),
          read: r.read,
          write: r.write,
          by: r.by,
          ...(following.length > 0 ? { following } : {}),
        },
      };
    } catch (err) {
      iommu.m.translations.inc({ mode: iommu.mode, result: 'error' });
      if (err instanceof IommuError && err.kind === 'guest')
        iommu.m.faults.inc({ reason: err.code });
      throw err;
    }
  });

  bus.handle(IommuLookup, ({ head }) => {
    const iova = parseHex('bus', head.iova);
    const entry =
      iommu.mode === 'translate' ? iommu.tables.lookup(head.bdf, Number(iova >> 12n)) : undefined;
    const machine =
      iommu.mode === 'passthrough'
        ? iova
        : entry
          ? (BigInt(entry.mfn) << 12n) | (iova & 0xfffn)
          : null;
    return {
      body: {
        mode: iommu.mode,
        mapped: machine !== null,
        machine: machine === null ? null : toHex(machine),
        read: iommu.mode === 'passthrough' || Boolean(entry?.read),
        write: iommu.mode === 'passthrough' || Boolean(entry?.write),
      },
    };
  });

  bus.handle(IommuFaults, ({ head }) => ({
    body: iommu.faults.since(head.since, FAULTS_PER_REPLY),
  }));
}
