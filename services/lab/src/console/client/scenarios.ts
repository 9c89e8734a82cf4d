// The scenarios page: each scenario's last run, a Run button, live DMA verdicts.
import { type ApiError, byId, el, one, postJson } from './dom.js';
import { loadRealGuestRuns } from './real-guest.js';

interface LastRun {
  outcome: string;
  pass: boolean;
  firstMisdirected?: { traceId?: string } | null;
  traceIds?: string[];
}
interface ScenarioRow {
  id: string;
  title: string;
  expected: string;
  group: string;
  runnable: boolean;
  lastRun: LastRun | null;
}
interface Live {
  running: { id: string } | null;
  verdicts: Record<string, number>;
  stats: { traces: number };
}

const tbody = one<HTMLTableSectionElement>('#scenarios tbody');

function traceLink(r: LastRun): HTMLAnchorElement | null {
  // Link the trace of the first wrong access when there is one: that is where the ladder is.
  const tid = r.firstMisdirected?.traceId ?? r.traceIds?.[0];
  if (!tid) return null;
  const a = el('a', 'trace-link mono', tid.slice(0, 12) + '…');
  a.href = '/trace/' + tid;
  return a;
}

function runButton(s: ScenarioRow): HTMLButtonElement {
  const b = el('button', 'run', 'Run');
  b.disabled = !s.runnable;
  b.addEventListener('click', () => {
    document.querySelectorAll<HTMLButtonElement>('button.run').forEach((x) => (x.disabled = true));
    b.textContent = 'Running…';
    void (async () => {
      const res = await postJson('/api/scenarios/' + s.id + '/run', {});
      if (!res.ok) alert(((await res.json()) as ApiError).message);
      await load();
    })();
  });
  return b;
}

interface Group {
  id: string;
  title: string;
}

/** A heading row for one of the thread's options; its scenarios follow it. */
function groupRow(g: Group): HTMLTableRowElement {
  const tr = el('tr', 'group');
  tr.dataset.group = g.id;
  const th = el('th', undefined, g.title);
  th.colSpan = 6;
  tr.append(th);
  return tr;
}

async function load(): Promise<void> {
  const { groups, scenarios } = (await (await fetch('/api/scenarios')).json()) as {
    groups: Group[];
    scenarios: ScenarioRow[];
  };
  tbody.replaceChildren();
  for (const g of groups) {
    const rows = scenarios.filter((s) => s.group === g.id);
    if (rows.length === 0) continue;
    tbody.append(groupRow(g));
    for (const s of rows) tbody.append(scenarioRow(s));
  }
}

function scenarioRow(s: ScenarioRow): HTMLTableRowElement {
  const tr = el('tr');
  tr.dataset.id = s.id;
  tr.dataset.group = s.group;
  const name = el('td');
  name.append(el('b', undefined, s.id), el('br'), el('span', 'muted', s.title));
  const r = s.lastRun;
  const tc = el('td');
  const link = r && traceLink(r);
  if (link) tc.append(link);
  const bc = el('td');
  bc.append(runButton(s));
  tr.append(
    name,
    el('td', undefined, s.expected),
    el('td', 'observed', r ? r.outcome : '—'),
    el('td', r ? (r.pass ? 'pass' : 'fail') : undefined, r ? (r.pass ? 'PASS' : 'FAIL') : ''),
    tc,
    bc,
  );
  return tr;
}

byId('cancel').addEventListener('click', () => {
  void (async () => {
    const res = await fetch('/api/run/cancel', { method: 'POST' });
    if (!res.ok) alert(((await res.json()) as ApiError).message);
  })();
});

async function live(): Promise<void> {
  try {
    const l = (await (await fetch('/api/live')).json()) as Live;
    const v =
      Object.entries(l.verdicts)
        .map(([k, n]) => `${k} ${n}`)
        .join(' · ') || 'no DMA yet';
    byId('cancel').hidden = !l.running;
    byId('live').textContent =
      (l.running ? `running ${l.running.id}: ` : 'last run: ') +
      `${v}   (${l.stats.traces} traces stored)`;
  } catch {
    // The console is restarting or the network blipped: the next tick retries.
  }
}

interface TraceRow {
  traceId: string;
  rootName: string;
  stacks: string[];
  services: string[];
  spans: number;
  durationUs: number;
}

// The stack selector filters the recent traces; `?stack=` in the page's URL preselects one.
const stackSelect = byId<HTMLSelectElement>('stack');
const initialStack = new URLSearchParams(location.search).get('stack');

function offerStacks(stacks: string[]): void {
  const offered = new Set([...stackSelect.options].map((o) => o.value));
  for (const s of stacks) {
    if (offered.has(s)) continue;
    const o = el('option', undefined, s);
    o.value = s;
    stackSelect.append(o);
    if (s === initialStack && !stackSelect.value) stackSelect.value = s;
  }
}

async function traces(): Promise<void> {
  const stack = stackSelect.value;
  const query = '?limit=20' + (stack ? '&stack=' + encodeURIComponent(stack) : '');
  const res = await fetch('/api/traces' + query);
  if (!res.ok) return;
  const out = (await res.json()) as { traces: TraceRow[]; stacks: string[] };
  offerStacks(out.stacks);
  if (stackSelect.value !== stack) return traces();
  const body = one<HTMLTableSectionElement>('#traces tbody');
  body.replaceChildren();
  for (const t of out.traces) {
    const link = el('a', 'trace-link mono', t.traceId.slice(0, 12) + '…');
    link.href = '/trace/' + t.traceId;
    const first = el('td');
    first.append(link);
    const tr = el('tr');
    tr.dataset.stacks = t.stacks.join(' ');
    tr.append(
      first,
      el('td', undefined, t.rootName),
      el('td', 'mono', t.stacks.join(', ') || '—'),
      el('td', undefined, t.services.join(', ')),
      el('td', undefined, String(t.spans)),
      el('td', undefined, String(t.durationUs)),
    );
    body.append(tr);
  }
}

stackSelect.addEventListener('change', () => {
  const url = new URL(location.href);
  if (stackSelect.value) url.searchParams.set('stack', stackSelect.value);
  else url.searchParams.delete('stack');
  history.replaceState(null, '', url);
  void traces();
});

void load();
void live();
void traces().catch(() => undefined);
setInterval(() => void live(), 500);
setInterval(() => void traces().catch(() => undefined), 2000);
void loadRealGuestRuns().catch(() => undefined);
setInterval(() => void loadRealGuestRuns().catch(() => undefined), 5000);
