// The scenarios page's real-guest section: each `nestlab reference --device
// nestlab` run, the guest's own view beside nestlab's per-access view.
import { el, one } from './dom.js';

/** The JSON of run/real-guest-run.ts's RealGuestRun (the page's build cannot import the server's types). */
interface RealGuestRun {
  scenario: string;
  source: string;
  viommu: boolean;
  expectedVerdict: string;
  savedAt: string;
  outcome: string;
  guest: { wrote: boolean; read: boolean; sumPattern: string | null; sumBack: string | null };
  expectedSum: string | null;
  nestlab: {
    imageSum: string | null;
    records: number;
    byVerdict: Record<string, number>;
    byWhat: Record<string, number>;
    bufferBytesRead: number;
    bufferBytesWritten: number;
    traceIds: string[];
  };
  otlpEndpoint: string | null;
  errors: string[];
}
interface Unreadable {
  file: string;
  message: string;
}

const counts = (c: Record<string, number>) =>
  Object.entries(c)
    .map(([k, n]) => `${k} ${n}`)
    .join(' · ') || 'none';
const sum = (s: string | null) => (s ? s.slice(0, 8) : '—');

/** A cell of lines, the first one bold-less, each its own block. */
function lines(...text: string[]): HTMLTableCellElement {
  const td = el('td');
  for (const t of text) td.append(el('div', undefined, t));
  return td;
}

function guestCell(r: RealGuestRun): HTMLTableCellElement {
  const g = r.guest;
  const match = g.sumBack !== null && g.sumBack === r.expectedSum;
  const td = lines(
    `wrote ${g.wrote ? 'ok' : 'FAILED'} · read back ${g.read ? 'ok' : 'FAILED'}`,
    `md5 written ${sum(g.sumPattern)} · read ${sum(g.sumBack)}`,
  );
  td.className = 'guest';
  td.append(
    el('div', match ? 'pass' : 'fail', match ? 'read back what it wrote' : 'checksum differs'),
  );
  return td;
}

function nestlabCell(r: RealGuestRun): HTMLTableCellElement {
  const n = r.nestlab;
  const td = el('td', 'nestlab');
  const verdicts = el('div', 'verdicts');
  verdicts.append(`${n.records} accesses: `);
  for (const [v, count] of Object.entries(n.byVerdict))
    verdicts.append(el('span', 'verdict verdict-' + v, `${v} ${count} `));
  const all = n.records > 0 && n.byVerdict[r.expectedVerdict] === n.records;
  td.append(
    verdicts,
    el('div', 'muted', `by what: ${counts(n.byWhat)}`),
    el(
      'div',
      all ? 'pass' : 'fail',
      all ? `every access ${r.expectedVerdict}` : `expected every access ${r.expectedVerdict}`,
    ),
    el('div', 'muted', `disk image md5 ${sum(n.imageSum)}`),
  );
  return td;
}

function tracesCell(r: RealGuestRun): HTMLTableCellElement {
  const td = el('td');
  const first = r.nestlab.traceIds[0];
  if (!r.otlpEndpoint || !first) {
    td.append(el('span', 'muted', r.otlpEndpoint ? 'no trace ids' : 'not traced'));
    return td;
  }
  const a = el('a', 'trace-link mono', first.slice(0, 12) + '…');
  a.href = '/trace/' + first;
  const all = el('a', 'muted', `${r.nestlab.traceIds.length} traces (stack reference)`);
  all.href = '/?stack=reference#traces';
  td.append(a, el('br'), all);
  return td;
}

function runRow(r: RealGuestRun): HTMLTableRowElement {
  const tr = el('tr');
  tr.dataset.id = r.scenario;
  const name = el('td');
  name.append(
    el('b', undefined, r.scenario),
    el('br'),
    el('span', 'muted', r.source + (r.viommu ? ", behind QEMU's vIOMMU" : '')),
    el('br'),
    el('span', 'muted', new Date(r.savedAt).toLocaleString()),
  );
  const n = r.nestlab;
  tr.append(
    name,
    el(
      'td',
      'outcome ' + (r.outcome === 'ok' ? 'pass' : 'fail'),
      r.outcome === 'ok' ? 'PASS ok' : `FAIL ${r.outcome}`,
    ),
    guestCell(r),
    nestlabCell(r),
    lines(`read ${n.bufferBytesRead} B`, `written ${n.bufferBytesWritten} B`),
    tracesCell(r),
  );
  if (r.errors.length) tr.title = r.errors.join('\n');
  return tr;
}

function unreadableRow(u: Unreadable): HTMLTableRowElement {
  const tr = el('tr', 'unreadable');
  const td = el('td', 'fail', `${u.file}: ${u.message}`);
  td.colSpan = 6;
  tr.append(td);
  return tr;
}

/** Reads the store again: a run the CLI saved from another shell appears on the next tick. */
export async function loadRealGuestRuns(): Promise<void> {
  const res = await fetch('/api/real-guest-runs');
  if (!res.ok) return;
  const { runs, unreadable } = (await res.json()) as {
    runs: RealGuestRun[];
    unreadable: Unreadable[];
  };
  one<HTMLTableSectionElement>('#real-guest-runs tbody').replaceChildren(
    ...runs.map(runRow),
    ...unreadable.map(unreadableRow),
  );
  one('#real-guest-none').hidden = runs.length + unreadable.length > 0;
}
