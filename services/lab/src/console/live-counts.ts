import { ATTR } from '@nestlab/telemetry';
import type { StoredSpan } from './trace-store.js';

/** DMA verdict counts as spans arrive, for the live view while a run is going. */
export class LiveCounts {
  private counts: Record<string, number> = {};
  private since = Date.now();

  observe(span: StoredSpan): void {
    const verdict = span.attributes[ATTR.dmaVerdict];
    if (typeof verdict === 'string') this.counts[verdict] = (this.counts[verdict] ?? 0) + 1;
    // The oracle's judgement of an access that went wrong is shown beside the verdicts.
    const intent = span.attributes['nestlab.dma.intent'];
    if (intent === 'stale' || intent === 'misdirected')
      this.counts[intent] = (this.counts[intent] ?? 0) + 1;
  }
  reset(): void {
    this.counts = {};
    this.since = Date.now();
  }
  snapshot(): { since: number; verdicts: Record<string, number> } {
    return { since: this.since, verdicts: { ...this.counts } };
  }
}
