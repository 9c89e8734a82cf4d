import { PAGE_SIZE, parseHex, toHex } from '@nestlab/addr';
import {
  IommuConfigure,
  IommuFaults,
  IommuLookup,
  IommuMap,
  IommuTranslate,
  IommuUnmap,
  IotlbInvalidate,
  MAX_TRANSLATE_RUN,
  type IommuMode,
  type IovaRange,
} from '@nestlab/protocol';
import type { ServiceContext } from '@nestlab/service-kit';
import { recordStep } from '@nestlab/telemetry';
import { IommuError } from './errors.js';
import { FaultLog } from './faults.js';
import { LiveMaps, type LiveMap } from './live-maps.js';
import { iommuMetrics } from './metrics.js';
import { PageTables } from './page-table.js';
import { IommuJournal, journalPath, type IommuRecord } from './persist/iommu-journal.js';
import { checkMfns, firstPageOf, pageOf, translate } from './translate.js';

interface IotlbPageOut {
  machinePage: string;
  read: boolean;
  write: boolean;
}

const FAULTS_PER_REPLY = 1000;

/** One range's IOTLB invalidation owed after an unmap; `mfn`: what its first page mapped to. */
export interface Invalidation {
  readonly bdf: string;
  readonly iova: string;
  readonly pages: number;
  readonly mfn: number | undefined;
}

export class IommuService {
  mode: IommuMode = 'off';
  readonly tables = new PageTables();
  readonly faults = new FaultLog();
  readonly live = new LiveMaps();
  /** Hooks of the armed domain faults (domain-faults.ts). */
  onMapped: ((m: LiveMap) => void) | undefined;
  /** Returns true when it took over (lost or delayed) this invalidation. */
  onInvalidate: ((inv: Invalidation) => boolean) | undefined;
  private journal: IommuJournal | undefined;
  private readonly m;

  constructor(
    readonly ctx: ServiceContext,
    private readonly dataDir?: string,
  ) {
    this.m = iommuMetrics(ctx.metrics);
    this.m.presentPages.set(() => this.tables.mappedPages);
    this.faults.onRecord = (f) => this.persist({ t: 'fault', f });
  }

  /** Comes back with the tables of the last run, as a restarted IOMMU finds them in RAM. */
  restore(): void {
    if (!this.dataDir) return;
    const path = journalPath(this.dataDir, this.ctx.config.stack);
    const { journal, replayed } = IommuJournal.open(path, this, this.ctx.log);
    this.journal = journal;
    if (replayed > 0)
      this.ctx.log.warn(
        {
          path,
          mode: this.mode,
          mappedPages: this.tables.mappedPages,
          nextFault: this.faults.next,
        },
        'restored the page tables of the previous run',
      );
  }

  private persist(rec: IommuRecord): void {
    this.journal?.write(rec);
  }

  close(): void {
    this.journal?.close();
  }

  register(): void {
    const { bus } = this.ctx;

    bus.handle(IommuConfigure, ({ head }) => {
      this.mode = head.mode;
      this.tables.clear();
      this.faults.clear();
      this.live.clear();
      this.persist({ t: 'cfg', mode: head.mode });
      this.ctx.log.info({ mode: head.mode }, 'configured');
      return { body: { mode: this.mode } };
    });

    // A scatter list (iommu_map_sg): every range is checked before any is applied.
    bus.handle(IommuMap, ({ head }) => {
      this.requireOn();
      const ranges = head.ranges.map((r) => {
        checkMfns(r.mfns);
        const firstPage = firstPageOf(parseHex('bus', r.iova), r.mfns.length);
        return { firstPage, mfns: r.mfns, read: r.read, write: r.write };
      });
      const mapped = this.tables.mapAll(head.bdf, ranges);
      for (const r of ranges) {
        this.persist({
          t: 'map',
          bdf: head.bdf,
          page: r.firstPage,
          mfns: r.mfns,
          r: r.read,
          w: r.write,
        });
        const live = { bdf: head.bdf, first: r.firstPage, pages: r.mfns.length };
        this.live.add(live);
        this.onMapped?.(live);
      }
      this.m.maps.inc({}, mapped);
      return { body: { mapped } };
    });

    // Unmap, then invalidate before replying: the driver may reuse the IOVAs as
    // soon as it has the reply, so every IOTLB must have dropped them by then
    // (Linux: iommu_unmap() -> iotlb_sync before returning). One event carries
    // every range; a range the stale-iotlb fault takes over is left out of it.
    bus.handle(IommuUnmap, async ({ head }) => {
      this.requireOn();
      const ranges = head.ranges.map((r) => ({
        ...r,
        first: firstPageOf(parseHex('bus', r.iova), r.pages),
      }));
      let unmapped = 0;
      const owed: IovaRange[] = [];
      for (const r of ranges) {
        const was = this.tables.lookup(head.bdf, r.first);
        unmapped += this.unmap(head.bdf, r.first, r.pages);
        const inv = { bdf: head.bdf, iova: r.iova, pages: r.pages, mfn: was?.mfn };
        if (!this.onInvalidate?.(inv)) owed.push({ iova: r.iova, pages: r.pages });
      }
      if (owed.length > 0) await this.invalidate(head.bdf, owed);
      return { body: { unmapped } };
    });

    bus.handle(IommuTranslate, ({ head }) => {
      try {
        const iova = parseHex('bus', head.iova);
        const r = translate(
          this.mode,
          this.tables,
          this.faults,
          { bdf: head.bdf, iova, write: head.write },
          recordStep,
        );
        this.m.translations.inc({ mode: this.mode, result: 'ok' });
        const following = r.by === 'iommu' ? this.following(head.bdf, pageOf(iova)) : [];
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

  /** Clears the entries (and journals it); returns how many were mapped. */
  unmap(bdf: string, first: number, pages: number): number {
    const { unmapped, absent } = this.tables.unmap(bdf, first, pages);
    this.persist({ t: 'unmap', bdf, page: first, pages });
    this.live.remove(bdf, first, pages);
    this.m.unmaps.inc({}, unmapped);
    if (absent > 0) this.m.unmapAbsent.inc({}, absent);
    return unmapped;
  }

  /**
   * The mapped pages after `page` (up to the first hole): what a translate
   * reply carries so the IOTLB fills a whole run on one miss. Safe because
   * every later unmap of them sends its invalidation after this reply.
   */
  private following(bdf: string, page: number): IotlbPageOut[] {
    return this.tables.run(bdf, page + 1, MAX_TRANSLATE_RUN).map((e) => ({
      machinePage: `0x${(e.mfn * PAGE_SIZE).toString(16)}`,
      read: e.read,
      write: e.write,
    }));
  }

  /** Publishes the IOTLB invalidation of `ranges` and waits until the server has it. */
  async invalidate(bdf: string, ranges: readonly IovaRange[]): Promise<void> {
    this.ctx.bus.publish(IotlbInvalidate, { bdf, ranges: [...ranges] });
    this.m.invalidations.inc();
    // The server has the invalidate before anyone can see the reply.
    await this.ctx.bus.nc.flush();
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
