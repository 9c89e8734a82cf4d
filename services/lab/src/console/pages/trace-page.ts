import { ATTR } from '@nestlab/telemetry';
import { escapeHtml, layout } from './layout.js';

/** The span waterfall of one I/O across the services, and the address ladder of its DMA accesses. */
export function tracePage(traceId: string): string {
  const safeId = traceId.replace(/[^0-9a-fA-F]/g, '');
  // The script reads the id and the attribute keys from here (see ../client/trace.ts).
  const body = `
<section id="trace" data-trace-id="${safeId}" data-attr-keys="${escapeHtml(JSON.stringify(ATTR))}">
<h2>Trace <span class="mono">${safeId}</span></h2>
<div id="summary" class="muted"></div>
<h3>Address ladder</h3>
<div id="ladders"></div>
<h3>Spans</h3>
<div id="waterfall"></div>
<h3>Attributes</h3>
<div id="attrs" class="mono muted">click a span</div>
</section>`;
  return layout(`trace ${safeId.slice(0, 12)}`, body, 'trace');
}
