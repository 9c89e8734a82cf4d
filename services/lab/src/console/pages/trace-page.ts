import { ATTR } from '@nestlab/telemetry';
import { layout } from './layout.js';

/** The span waterfall of one I/O across the services, and the address ladder of its DMA accesses. */
export function tracePage(traceId: string): string {
  const safeId = traceId.replace(/[^0-9a-fA-F]/g, '');
  const body = `
<h2>Trace <span class="mono">${safeId}</span></h2>
<div id="summary" class="muted"></div>
<h3>Address ladder</h3>
<div id="ladders"></div>
<h3>Spans</h3>
<div id="waterfall"></div>
<h3>Attributes</h3>
<div id="attrs" class="mono muted">click a span</div>`;
  const script = `
const A = ${JSON.stringify(ATTR)};
const LAYERS = [['pseudo_phys', A.addrPseudoPhys], ['bus', A.addrBus], ['machine', A.addrMachine], ['host_phys', A.addrHostPhys]];
function el(tag, cls, text) { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; }
function ladder(access, spans, idx) {
  // The pseudo-physical address comes from the driver's mapping of the same bus address, when the access span lacks it.
  const a = { ...access.attributes };
  const bus = a[A.addrBus];
  if (!a[A.addrPseudoPhys] && bus) {
    const m = spans.find((s) => s.attributes[A.addrBus] === bus && s.attributes[A.addrPseudoPhys]);
    if (m) a[A.addrPseudoPhys] = m.attributes[A.addrPseudoPhys];
  }
  const box = el('div', 'ladder'); box.id = 'ladder-' + idx; box.dataset.verdict = a[A.dmaVerdict] || '';
  const verdict = a[A.dmaVerdict] || '?';
  LAYERS.forEach(([layer, key], i) => {
    const row = [el('div', 'layer', layer), el('div', 'mono addr', a[key] || '—'), el('div', 'muted', '')];
    row.forEach((r) => r.dataset.layer = layer);
    if (layer === 'machine') {
      const note = row[2];
      const intent = a['nestlab.dma.intent'];
      note.className = 'verdict-' + (intent === 'misdirected' || intent === 'stale' ? 'misdirected' : verdict);
      const owner = a[A.frameOwner];
      const whose = owner === 'free' ? 'a free frame (scrubbed by Xen)' : owner ? 'a frame owned by ' + owner : '';
      note.textContent = intent === 'misdirected'
        ? 'MISDIRECTED (' + verdict + '): hit ' + whose + '; the driver meant ' + (a['nestlab.oracle.intended_machine'] || '?')
        : intent === 'stale'
        ? 'STALE (' + verdict + '): a translation the driver had already unmapped (IOTLB not invalidated) hit ' + whose
        : 'verdict ' + verdict + (intent ? ', ' + intent : '') + (whose ? ' — ' + whose : '');
      if (owner) { const o = el('span', 'owner mono', owner); o.hidden = true; note.append(o); }
      if (a['nestlab.iommu.mode'] !== undefined) {
        note.append(el('div', 'muted', 'IOMMU ' + a['nestlab.iommu.mode'] + (a['nestlab.iommu.mode'] === 'off' ? ' (not in the path)' : a['nestlab.iommu.mapped'] ? ': the bus address is mapped' : ': no mapping for this bus address')));
      }
    }
    box.append(...row);
    if (i < LAYERS.length - 1) {
      const by = i === 0 ? (a['nestlab.translation.by.pseudo_phys'] || 'DMA API / legacyPhysAsBus') : i === 1 ? (a[A.translationBy] || '?') : 'memslot';
      box.append(el('div', 'arrow', '↓ ' + by));
    }
  });
  return box;
}
async function main() {
  const res = await fetch('/api/traces/${safeId}');
  if (!res.ok) { document.getElementById('summary').textContent = (await res.json()).message; return; }
  const { spans } = await res.json();
  const t0 = Math.min(...spans.map((s) => s.startUs)), t1 = Math.max(...spans.map((s) => s.endUs));
  const services = [...new Set(spans.map((s) => s.service))];
  document.getElementById('summary').textContent = spans.length + ' spans across ' + services.join(', ') + ' · ' + (t1 - t0) + ' µs';
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  const depth = (s) => { let d = 0; let p = s.parentSpanId; while (p && byId.has(p) && d < 50) { d++; p = byId.get(p).parentSpanId; } return d; };
  const wf = document.getElementById('waterfall');
  for (const s of spans) {
    const row = el('div', 'wf-row'); row.dataset.service = s.service;
    const name = el('div', 'wf-name', '\\u00a0'.repeat(depth(s) * 2) + s.service + ' · ' + s.name);
    const track = el('div', 'wf-track');
    const bar = el('div', 'bar svc-' + s.service);
    bar.style.left = ((s.startUs - t0) / Math.max(1, t1 - t0) * 100) + '%';
    bar.style.width = Math.max(0.3, (s.endUs - s.startUs) / Math.max(1, t1 - t0) * 100) + '%';
    track.append(bar); row.append(name, track);
    row.onclick = () => { document.getElementById('attrs').textContent = JSON.stringify({ service: s.service, name: s.name, durationUs: s.endUs - s.startUs, attributes: s.attributes, links: s.links }, null, 2); };
    wf.append(row);
  }
  // The oracle's judgement of an access supersedes the device's own span of it.
  const judged = new Set(spans.filter((s) => s.attributes['nestlab.dma.intent']).map((s) => s.attributes[A.addrBus] + '>' + s.attributes[A.addrMachine]));
  const accesses = spans.filter((s) => s.attributes[A.dmaVerdict] && (s.attributes['nestlab.dma.intent'] || !judged.has(s.attributes[A.addrBus] + '>' + s.attributes[A.addrMachine])));
  const rank = (s) => s.attributes[A.frameOwner] ? 0 : s.attributes[A.dmaVerdict] === 'faulted' ? 1 : 2;
  accesses.sort((a, b) => rank(a) - rank(b));
  const lw = document.getElementById('ladders');
  if (!accesses.length) lw.textContent = 'no DMA access in this trace';
  accesses.slice(0, 6).forEach((s, i) => lw.append(ladder(s, spans, i)));
}
main();`;
  return layout(`trace ${safeId.slice(0, 12)}`, body, script);
}
