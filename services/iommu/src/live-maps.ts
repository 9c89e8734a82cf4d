// The device mappings still live, newest last: what the unmap-in-flight fault
// picks from (the newest mapping is the buffer of the I/O most recently set up).
import type { PageTables } from './page-table.js';

export interface LiveMap {
  readonly bdf: string;
  readonly first: number;
  readonly pages: number;
}

const MAX_TRACKED = 65_536;
const key = (bdf: string, first: number) => `${bdf}/${first}`;

export class LiveMaps {
  // A Map iterates in insertion order: the last entry is the newest map.
  private readonly maps = new Map<string, LiveMap>();

  add(m: LiveMap): void {
    this.maps.delete(key(m.bdf, m.first));
    this.maps.set(key(m.bdf, m.first), m);
    if (this.maps.size > MAX_TRACKED) {
      const oldest = this.maps.keys().next().value;
      if (oldest !== undefined) this.maps.delete(oldest);
    }
  }

  /** Forgets the mappings that start inside the unmapped range. */
  remove(bdf: string, first: number, pages: number): void {
    for (const [k, m] of this.maps)
      if (m.bdf === bdf && m.first >= first && m.first < first + pages) this.maps.delete(k);
  }

  /** The newest mapping whose first page is still present (partial unmaps leave stale records). */
  newest(tables: PageTables): LiveMap | undefined {
    const all = [...this.maps.values()];
    for (let i = all.length - 1; i >= 0; i--) {
      const m = all[i]!;
      if (tables.lookup(m.bdf, m.first)) return m;
      this.maps.delete(key(m.bdf, m.first));
    }
    return undefined;
  }

  list(): LiveMap[] {
    return [...this.maps.values()];
  }

  clear(): void {
    this.maps.clear();
  }
}
