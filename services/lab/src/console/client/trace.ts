// The trace page: the span waterfall of one I/O and the address ladder of its DMA accesses.
// The server puts the trace id and the attribute keys (@nestlab/telemetry's ATTR) in data- attributes.
import { type ApiError, byId, el } from './dom.js';

type AttrValue = string | number | boolean;
interface Span {
  spanId: string;
  parentSpanId: string | null;
  service: string;
  name: string;
  startUs: number;
  endUs: number;
  attributes: Record<string, AttrValue | undefined>;
  links: { traceId: string; spanId: string }[];
}
interface AttrKeys {
  addrPseudoPhys: string;
  addrBus: string;
  addrMachine: string;
  addrHostPhys: string;
  translationBy: string;
  dmaVerdict: string;
  frameOwner: string;
}

const root = byId('trace');
const traceId = root.dataset.traceId ?? '';
const A = JSON.parse(root.dataset.attrKeys ?? '{}') as AttrKeys;
const INTENT = 'nestlab.dma.intent';
const LAYERS: [string, string][] = [
  ['pseudo_phys', A.addrPseudoPhys],
  ['bus', A.addrBus],
  ['machine', A.addrMachine],
  ['host_phys', A.addrHostPhys],
];
const str = (v: AttrValue | undefined): string => (v === undefined ? '' : String(v));

function machineNote(note: HTMLElement, a: Span['attributes']): void {
  const intent = str(a[INTENT]);
  const verdict = str(a[A.dmaVerdict]) || '?';
  note.className =
    'verdict-' + (intent === 'misdirected' || intent === 'stale' ? 'misdirected' : verdict);
  const owner = str(a[A.frameOwner]);
  const whose =
    owner === 'free' ? 'a free frame (scrubbed by Xen)' : owner ? 'a frame owned by ' + owner : '';
  note.textContent =
    intent === 'misdirected'
      ? `MISDIRECTED (${verdict}): hit ${whose}; the driver meant ${str(a['nestlab.oracle.intended_machine']) || '?'}`
      : intent === 'stale'
        ? `STALE (${verdict}): a translation the driver had already unmapped (IOTLB not invalidated) hit ${whose}`
        : 'verdict ' + verdict + (intent ? ', ' + intent : '') + (whose ? ' — ' + whose : '');
  if (owner) {
    const o = el('span', 'owner mono', owner);
    o.hidden = true;
    note.append(o);
  }
  const mode = a['nestlab.iommu.mode'];
  if (mode !== undefined) {
    const how =
      mode === 'off'
        ? ' (not in the path)'
        : a['nestlab.iommu.mapped']
          ? ': the bus address is mapped'
          : ': no mapping for this bus address';
    note.append(el('div', 'muted', `IOMMU ${str(mode)}${how}`));
  }
}

function ladder(access: Span, spans: Span[], idx: number): HTMLElement {
  // The pseudo-physical address comes from the driver's mapping of the same bus address, when the access span lacks it.
  const a = { ...access.attributes };
  const bus = a[A.addrBus];
  if (!a[A.addrPseudoPhys] && bus) {
    const m = spans.find((s) => s.attributes[A.addrBus] === bus && s.attributes[A.addrPseudoPhys]);
    if (m) a[A.addrPseudoPhys] = m.attributes[A.addrPseudoPhys];
  }
  const box = el('div', 'ladder');
  box.id = 'ladder-' + idx;
  box.dataset.verdict = str(a[A.dmaVerdict]);
  // No pseudo-physical address anywhere (a real guest's driver, seen only from
  // the device): the ladder starts at the bus address the driver gave.
  const from = a[A.addrPseudoPhys] ? 0 : 1;
  LAYERS.forEach(([layer, key], i) => {
    if (i < from) return;
    const row = [
      el('div', 'layer', layer),
      el('div', 'mono addr', str(a[key]) || '—'),
      el('div', 'muted', ''),
    ];
    row.forEach((r) => (r.dataset.layer = layer));
    if (layer === 'machine' && row[2]) machineNote(row[2], a);
    box.append(...row);
    if (i < LAYERS.length - 1) {
      const by =
        i === 0
          ? str(a['nestlab.translation.by.pseudo_phys']) || 'DMA API / legacyPhysAsBus'
          : i === 1
            ? str(a[A.translationBy]) || '?'
            : 'memslot';
      box.append(el('div', 'arrow', '↓ ' + by));
    }
  });
  return box;
}

function waterfall(spans: Span[], t0: number, t1: number): void {
  const byParent = new Map(spans.map((s) => [s.spanId, s]));
  const depth = (s: Span): number => {
    let d = 0;
    let p = s.parentSpanId;
    while (p && d < 50) {
      const parent = byParent.get(p);
      if (!parent) break;
      d++;
      p = parent.parentSpanId;
    }
    return d;
  };
  const span = Math.max(1, t1 - t0);
  const wf = byId('waterfall');
  for (const s of spans) {
    const row = el('div', 'wf-row');
    row.dataset.service = s.service;
    const name = el('div', 'wf-name', '\u00a0'.repeat(depth(s) * 2) + s.service + ' · ' + s.name);
    const track = el('div', 'wf-track');
    const bar = el('div', 'bar svc-' + s.service);
    bar.style.left = ((s.startUs - t0) / span) * 100 + '%';
    bar.style.width = Math.max(0.3, ((s.endUs - s.startUs) / span) * 100) + '%';
    track.append(bar);
    row.append(name, track);
    row.addEventListener('click', () => {
      const shown = {
        service: s.service,
        name: s.name,
        durationUs: s.endUs - s.startUs,
        attributes: s.attributes,
        links: s.links,
      };
      byId('attrs').textContent = JSON.stringify(shown, null, 2);
    });
    wf.append(row);
  }
}

async function main(): Promise<void> {
  const res = await fetch('/api/traces/' + traceId);
  if (!res.ok) {
    byId('summary').textContent = ((await res.json()) as ApiError).message;
    return;
  }
  const { spans } = (await res.json()) as { spans: Span[] };
  const t0 = Math.min(...spans.map((s) => s.startUs));
  const t1 = Math.max(...spans.map((s) => s.endUs));
  const services = [...new Set(spans.map((s) => s.service))];
  byId('summary').textContent =
    `${spans.length} spans across ${services.join(', ')} · ${t1 - t0} µs`;
  waterfall(spans, t0, t1);
  // The oracle's judgement of an access supersedes the device's own span of it.
  const key = (s: Span) => `${str(s.attributes[A.addrBus])}>${str(s.attributes[A.addrMachine])}`;
  const judged = new Set(spans.filter((s) => s.attributes[INTENT]).map(key));
  const accesses = spans.filter(
    (s) => s.attributes[A.dmaVerdict] && (s.attributes[INTENT] || !judged.has(key(s))),
  );
  const rank = (s: Span) =>
    s.attributes[A.frameOwner] ? 0 : s.attributes[A.dmaVerdict] === 'faulted' ? 1 : 2;
  accesses.sort((a, b) => rank(a) - rank(b));
  const lw = byId('ladders');
  if (!accesses.length) lw.textContent = 'no DMA access in this trace';
  accesses.slice(0, 6).forEach((s, i) => lw.append(ladder(s, spans, i)));
}

void main();
