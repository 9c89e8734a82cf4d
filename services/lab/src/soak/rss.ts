// Resident set size of local processes from /proc/<pid>/status (Linux), and a
// sampler that keeps a bounded series per process so a long soak cannot make
// the soak itself grow.
import { readFileSync } from 'node:fs';

/** VmRSS of a process in bytes, or null when it is gone or /proc has no such field. */
export function readRssBytes(pid: number, procRoot = '/proc'): number | null {
  let text: string;
  try {
    text = readFileSync(`${procRoot}/${pid}/status`, 'utf8');
  } catch {
    return null;
  }
  const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(text);
  return m ? Number(m[1]) * 1024 : null;
}

export interface RssSample {
  readonly atMs: number;
  readonly bytes: number;
}

/** The middle value: one GC-inflated sample does not move it. */
export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? (s[mid] ?? null) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

/** Samples named processes; keeps at most `keep` samples each (oldest dropped, after the first `pinned`). */
export class RssSampler {
  private readonly series = new Map<string, RssSample[]>();

  constructor(
    private readonly pids: ReadonlyMap<string, number>,
    private readonly keep = 4096,
    private readonly read: (pid: number) => number | null = readRssBytes,
  ) {
    for (const name of pids.keys()) this.series.set(name, []);
  }

  sample(atMs = Date.now()): void {
    for (const [name, pid] of this.pids) {
      const bytes = this.read(pid);
      const s = this.series.get(name);
      if (bytes === null || s === undefined) continue;
      s.push({ atMs, bytes });
      if (s.length > this.keep) s.splice(s.length >> 1, 1); // thin the middle, keep both ends
    }
  }

  /** Median RSS of one process over [fromMs, toMs], or null without samples there. */
  medianBetween(name: string, fromMs: number, toMs: number): number | null {
    const s = this.series.get(name) ?? [];
    return median(s.filter((x) => x.atMs >= fromMs && x.atMs <= toMs).map((x) => x.bytes));
  }

  /** The last `n` samples' median. */
  medianOfLast(name: string, n: number): number | null {
    return median((this.series.get(name) ?? []).slice(-n).map((x) => x.bytes));
  }

  peak(name: string): number | null {
    const s = this.series.get(name) ?? [];
    return s.length ? Math.max(...s.map((x) => x.bytes)) : null;
  }

  names(): string[] {
    return [...this.series.keys()];
  }
}
