import { parseHex, toHex } from '@nestlab/addr';
import {
  IommuConfigure,
  IommuFaults,
  IommuLookup,
  IommuMap,
  IommuTranslate,
  IommuUnmap,
  IotlbInvalidate,
  type IommuMode,
} from '@nestlab/protocol';
import type { ServiceContext } from '@nestlab/service-kit';
import { IommuError } from './errors.js';
import { FaultLog } from './faults.js';
import { iommuMetrics } from './metrics.js';
import { PageTables } from './page-table.js';
import { recordStep } from './span-attrs.js';
import { checkMfns, firstPageOf, translate } from './translate.js';

const FAULTS_PER_REPLY = 1000;

export class IommuService {
  mode: IommuMode = 'off';
  readonly tables = new PageTables();
  readonly faults = new FaultLog();
  private readonly m;

  constructor(private readonly ctx: ServiceContext) {
    this.m = iommuMetrics(ctx.metrics);
    this.m.mappedPages.set(() => this.tables.mappedPages);
  }

  register(): void {
    const { bus } = this.ctx;

    bus.handle(IommuConfigure, ({ head }) => {
      this.mode = head.mode;
      this.tables.clear();
      this.faults.clear();
      this.ctx.log.info({ mode: head.mode }, 'configured');
      return { body: { mode: this.mode } };
    });

    bus.handle(IommuMap, ({ head }) => {
      this.requireOn();
      const first = firstPageOf(parseHex('bus', head.iova), head.mfns.length);
      checkMfns(head.mfns);
      const mapped = this.tables.map(head.bdf, first, head.mfns, head.read, head.write);
      this.m.maps.inc({}, mapped);
      return { body: { mapped } };
    });

    // Unmap, then invalidate before replying: the driver may reuse the IOVA as
    // soon as it has the reply, so every IOTLB must have dropped it by then
    // (Linux: iommu_unmap() -> iotlb_sync before returning).
    bus.handle(IommuUnmap, async ({ head }) => {
      this.requireOn();
      const first = firstPageOf(parseHex('bus', head.iova), head.pages);
      const { unmapped, absent } = this.tables.unmap(head.bdf, first, head.pages);
      this.m.unmaps.inc({}, unmapped);
      if (absent > 0) this.m.unmapAbsent.inc({}, absent);
      bus.publish(IotlbInvalidate, { bdf: head.bdf, iova: head.iova, pages: head.pages });
      this.m.invalidations.inc();
      // The server has the invalidate before anyone can see the reply.
      await bus.nc.flush();
      return { body: { unmapped } };
    });

    bus.handle(IommuTranslate, ({ head }) => {
      try {
        const r = translate(
          this.mode,
          this.tables,
          this.faults,
          { bdf: head.bdf, iova: parseHex('bus', head.iova), write: head.write },
          recordStep,
        );
        this.m.translations.inc({ mode: this.mode, result: 'ok' });
        return { body: { machine: toHex(r.machine), read: r.read, write: r.write, by: r.by } };
      } catch (err) {
        this.m.translations.inc({ mode: this.mode, result: 'error' });
        if (err instanceof IommuError && err.kind === 'guest')
          this.m.faults.inc({ reason: err.code });
        throw err;
      }
    });

    bus.handle(IommuLookup, ({ head }) => {
      const iova = parseHex('bus', head.iova);
      const entry =
        this.mode === 'translate' ? this.tables.lookup(head.bdf, Number(iova >> 12n)) : undefined;
      const machine =
        this.mode === 'passthrough'
          ? iova
          : entry
            ? (BigInt(entry.mfn) << 12n) | (iova & 0xfffn)
            : null;
      return {
        body: {
          mode: this.mode,
          mapped: machine !== null,
          machine: machine === null ? null : toHex(machine),
          read: this.mode === 'passthrough' || Boolean(entry?.read),
          write: this.mode === 'passthrough' || Boolean(entry?.write),
        },
      };
    });

    bus.handle(IommuFaults, ({ head }) => ({
      body: this.faults.since(head.since, FAULTS_PER_REPLY),
    }));
  }

  private requireOn(): void {
    if (this.mode === 'off')
      throw new IommuError(
        'IOMMU_OFF',
        'the IOMMU is off; configure passthrough or translate first',
      );
  }

  state() {
    return {
      mode: this.mode,
      mappedPages: this.tables.mappedPages,
      domains: this.tables.summary(),
      faultsLogged: this.faults.size,
      recentFaults: this.faults.recent(20),
    };
  }
}
