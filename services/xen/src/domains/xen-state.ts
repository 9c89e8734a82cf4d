// Everything one XenConfigure builds: the frame table and each domain's P2M.
// Replaced wholesale on the next XenConfigure.
import { DmaMaps } from './dma-maps.js';
import { buildDom0Layout, type LayoutConfig, type LayoutRegion } from './dom0-layout.js';
import { domOwner, type FrameTable } from './frame-table.js';
import type { FrameRun } from './machine-ram.js';
import type { P2m } from './p2m.js';
import { XenError } from '../errors.js';

export interface XenConfig extends LayoutConfig {
  readonly passthrough: readonly string[];
}

export interface Domain {
  readonly id: number;
  readonly p2m: P2m;
}

export class XenState {
  readonly frameTable: FrameTable;
  readonly domains = new Map<number, Domain>();
  readonly regions: LayoutRegion[];
  /** What this configuration's domains had Xen map into the IOMMU. */
  readonly dmaMaps = new DmaMaps();

  constructor(readonly config: XenConfig) {
    const layout = buildDom0Layout(config);
    this.frameTable = layout.frameTable;
    this.regions = layout.regions;
    this.domains.set(0, { id: 0, p2m: layout.p2m });
  }

  domain(id: number): Domain {
    const d = this.domains.get(id);
    if (!d)
      throw new XenError(
        'NO_SUCH_DOMAIN',
        `no domain ${id} (running: ${[...this.domains.keys()].join(', ')})`,
      );
    return d;
  }

  /** The machine frames a domain's CPU may touch: the frames it owns. */
  cpuFrames(id: number): FrameRun[] {
    return this.frameTable.runsOf(domOwner(id));
  }

  summary() {
    return {
      config: this.config,
      domains: [...this.domains.values()].map((d) => ({
        id: d.id,
        pages: d.p2m.pages,
        p2mRanges: d.p2m.rangeCount,
      })),
      dmaMaps: this.dmaMaps.size,
      frameTable: { runs: this.frameTable.runCount, framesByOwner: this.frameTable.summary() },
      layout: this.regions.map((r) => ({
        pseudo: { first: r.pseudo.first, count: r.pseudo.count },
        machine: r.machine,
      })),
    };
  }
}
