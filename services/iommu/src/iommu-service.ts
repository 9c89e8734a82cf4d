// The running IOMMU: mode, page tables, fault log, live mappings, journal,
// and the IOTLB invalidation every unmap owes (handlers/ serve the messages).
import { PAGE_SIZE } from '@nestlab/addr';
import {
  IotlbInvalidate,
  IotlbPrime,
  MAX_TRANSLATE_RUN,
  type IommuMode,
  type IovaRange,
  type MappedRange,
} from '@nestlab/protocol';
import type { ServiceContext } from '@nestlab/service-kit';
import { IommuError } from './errors.js';
import { FaultLog } from './faults.js';
import { LiveMaps, type LiveMap } from './live-maps.js';
import { iommuMetrics } from './metrics.js';
import { PageTables } from './page-table.js';
import { IommuJournal, journalPath, type IommuRecord } from './persist/iommu-journal.js';

interface IotlbPageOut {
  machinePage: string;
  read: boolean;
  write: boolean;
}

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
  readonly m;

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
    const { journal, replayed } = IommuJournal.open(path, this, this.ctx.log, this.ctx.bus);
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

  persist(rec: IommuRecord): void {
    this.journal?.write(rec);
  }

  close(): void {
    this.journal?.close();
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
  following(bdf: string, page: number): IotlbPageOut[] {
    return this.tables.run(bdf, page + 1, MAX_TRANSLATE_RUN).map((e) => ({
      machinePage: `0x${(e.mfn * PAGE_SIZE).toString(16)}`,
      read: e.read,
      write: e.write,
    }));
  }

  /**
   * Publishes the IOTLB invalidation of `ranges`. In an unmap's handler the
   * Bus flushes it to the server before the reply (IommuUnmap declares
   * flushBeforeReply in shared/protocol); elsewhere nothing waits on it.
   */
  invalidate(bdf: string, ranges: readonly IovaRange[]): void {
    this.ctx.bus.publish(IotlbInvalidate, { bdf, ranges: [...ranges] });
    this.m.invalidations.inc();
  }

  /**
   * Publishes the mappings just created, before the map's reply (caching
   * mode's map notification): the DMA engine caches them, so the device's
   * first access needs no translate. Only the 'translate' mode has entries
   * to cache (passthrough translates by identity). Ordered with the
   * invalidations: both leave on this connection, so an unmap's
   * invalidation always reaches the engine after the prime of its mapping.
   */
  prime(bdf: string, ranges: MappedRange[]): void {
    if (this.mode !== 'translate' || ranges.length === 0) return;
    this.ctx.bus.publish(IotlbPrime, { bdf, ranges });
    this.m.primes.inc();
  }

  requireOn(): void {
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
