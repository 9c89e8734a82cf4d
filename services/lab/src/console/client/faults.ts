// The faults panel: the transport plan, per-service injections, domain faults armed and fired.
import { type ApiError, byId, el, one, postJson } from './dom.js';

interface Rule {
  id: string;
  action: string;
  subject: string;
  probability?: number;
  delayMs?: number;
}
interface DomainEvent {
  kind: string;
  n: number;
  atMs: number;
  detail: string;
}
interface ServiceFaults {
  injected: number;
  dropped: number;
  recent: { action: string; subject: string }[];
  domain: DomainEvent[];
}
interface FaultState {
  plan: { seed: number; rules: Rule[] };
  services: Record<string, ServiceFaults>;
}

function row(cells: unknown[]): HTMLTableRowElement {
  const tr = el('tr');
  for (const c of cells) tr.append(el('td', undefined, String(c)));
  return tr;
}

function msg(text: string, bad = false): void {
  const m = byId('message');
  m.textContent = text;
  m.className = 'mono ' + (bad ? 'fail' : 'muted');
}

async function send(path: string, body: unknown): Promise<FaultState & { armed?: number }> {
  const res = await postJson(path, body);
  const out = (await res.json()) as FaultState & { armed?: number } & ApiError;
  if (!res.ok) throw new Error(`${out.code}: ${out.message}`);
  return out;
}

function show(state: FaultState): void {
  byId('seed').textContent = `seed ${state.plan.seed}`;
  const rules = one('#rules tbody');
  rules.replaceChildren();
  for (const r of state.plan.rules) {
    const tr = row([
      r.id,
      r.action,
      r.subject,
      r.probability ?? 1,
      r.delayMs ? `${r.delayMs} ms` : '',
    ]);
    tr.dataset.rule = r.id;
    rules.append(tr);
  }
  if (!state.plan.rules.length) rules.append(row(['no rules', '', '', '', '']));
  const svcs = one('#services tbody');
  svcs.replaceChildren();
  const dom = one('#domain tbody');
  dom.replaceChildren();
  const events: (DomainEvent & { service: string })[] = [];
  for (const [name, s] of Object.entries(state.services)) {
    const last = s.recent[s.recent.length - 1];
    const tr = row([name, s.injected, s.dropped, last ? `${last.action} ${last.subject}` : '']);
    tr.dataset.service = name;
    svcs.append(tr);
    for (const d of s.domain) events.push({ service: name, ...d });
  }
  events.sort((a, b) => b.atMs - a.atMs);
  for (const d of events) {
    const tr = row([d.service, d.kind, d.n, new Date(d.atMs).toLocaleTimeString(), d.detail]);
    tr.className = 'domain-event';
    dom.append(tr);
  }
}

async function refresh(): Promise<void> {
  const res = await fetch('/api/faults');
  const out = (await res.json()) as FaultState & ApiError;
  if (!res.ok) return msg(`${out.code}: ${out.message}`, true);
  show(out);
}

/** Runs a form action; an API refusal becomes the message line, never an uncaught rejection. */
function act(work: () => Promise<void>): void {
  work().catch((err: unknown) => msg(err instanceof Error ? err.message : String(err), true));
}

const optional = (f: FormData, key: string): number | undefined =>
  f.get(key) ? Number(f.get(key)) : undefined;

const addRule = byId<HTMLFormElement>('add-rule');
addRule.addEventListener('submit', (e) => {
  e.preventDefault();
  const f = new FormData(addRule);
  const probability = optional(f, 'probability');
  const delayMs = optional(f, 'delayMs');
  const rule = {
    id: String(f.get('id')),
    subject: String(f.get('subject')),
    action: String(f.get('action')),
    ...(probability === undefined ? {} : { probability }),
    ...(delayMs === undefined ? {} : { delayMs }),
  };
  act(async () => {
    show(await send('/api/faults/rules', rule));
    msg(`rule ${rule.id} set on every service`);
  });
});
one('#add-rule .clear').addEventListener('click', () =>
  act(async () => {
    show(await send('/api/faults/clear', {}));
    msg('all rules cleared');
  }),
);

const inject = byId<HTMLFormElement>('inject');
inject.addEventListener('submit', (e) => {
  e.preventDefault();
  const f = new FormData(inject);
  const opt = one<HTMLSelectElement>('#inject select[name=kind]').selectedOptions[0];
  const count = optional(f, 'count');
  const body = {
    service: opt?.dataset.service ?? '',
    kind: String(f.get('kind')),
    ...(count === undefined ? {} : { count }),
  };
  act(async () => {
    const out = await send('/api/faults/inject', body);
    msg(
      `${body.kind} armed on ${body.service}` + (out.armed ? ` (${out.armed} to go)` : ' (fired)'),
    );
    await refresh();
  });
});

void refresh();
setInterval(() => void refresh(), 1000);
