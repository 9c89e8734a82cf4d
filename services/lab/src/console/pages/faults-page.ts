import { DOMAIN_FAULT_KINDS } from '@nestlab/protocol';
import { DOMAIN_FAULT_OWNER } from '../../faults/fleet-faults.js';
import { layout } from './layout.js';

/** The faults panel: the transport plan, what each service injected, domain faults armed and fired. */
export function faultsPage(): string {
  const body = `
<h2>Faults</h2>
<p class="muted">Transport rules apply where each service receives messages; domain faults are armed on the service that owns the state.
From a shell: <code>nestlab faults list|add|clear</code>, <code>nestlab experiments</code>.</p>
<h3>Transport rules <span id="seed" class="muted mono"></span></h3>
<table id="rules"><thead><tr><th>id</th><th>action</th><th>subject</th><th>probability</th><th>delay</th></tr></thead><tbody></tbody></table>
<form id="add-rule" style="margin:10px 0; display:flex; gap:8px; flex-wrap:wrap; align-items:center">
  <input name="id" placeholder="rule id" value="ui-rule" size="10" required>
  <input name="subject" placeholder="subject pattern" value="nestlab.*.xen.irq.msi" size="34" required>
  <select name="action">${['drop', 'delay', 'duplicate', 'reorder', 'corrupt'].map((a) => `<option>${a}</option>`).join('')}</select>
  <input name="probability" placeholder="probability" size="8">
  <input name="delayMs" placeholder="delay ms" size="7">
  <button type="submit" class="add">Add rule</button>
  <button type="button" class="clear">Clear all</button>
</form>
<h3>Per service</h3>
<table id="services"><thead><tr><th>service</th><th>injected</th><th>dropped</th><th>latest</th></tr></thead><tbody></tbody></table>
<h3>Domain faults</h3>
<form id="inject" style="margin:10px 0; display:flex; gap:8px; align-items:center">
  <select name="kind">${DOMAIN_FAULT_KINDS.map((k) => `<option value="${k}" data-service="${DOMAIN_FAULT_OWNER[k]}">${k} (${DOMAIN_FAULT_OWNER[k]})</option>`).join('')}</select>
  <input name="count" placeholder="count" size="5">
  <button type="submit" class="inject">Arm</button>
</form>
<div id="message" class="mono"></div>
<table id="domain"><thead><tr><th>service</th><th>kind</th><th>#</th><th>when</th><th>what it hit</th></tr></thead><tbody></tbody></table>`;
  const script = `
function el(tag, text, cls) { const e = document.createElement(tag); e.textContent = text; if (cls) e.className = cls; return e; }
function row(cells) { const tr = document.createElement('tr'); for (const c of cells) tr.append(el('td', String(c))); return tr; }
const msg = (t, bad) => { const m = document.getElementById('message'); m.textContent = t; m.className = 'mono ' + (bad ? 'fail' : 'muted'); };
async function send(path, body) {
  const res = await fetch(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const out = await res.json();
  if (!res.ok) { msg(out.code + ': ' + out.message, true); return null; }
  return out;
}
function show(state) {
  document.getElementById('seed').textContent = 'seed ' + state.plan.seed;
  const rules = document.querySelector('#rules tbody'); rules.innerHTML = '';
  for (const r of state.plan.rules) { const tr = row([r.id, r.action, r.subject, r.probability ?? 1, r.delayMs ? r.delayMs + ' ms' : '']); tr.dataset.rule = r.id; rules.append(tr); }
  if (!state.plan.rules.length) rules.append(row(['no rules', '', '', '', '']));
  const svcs = document.querySelector('#services tbody'); svcs.innerHTML = '';
  const dom = document.querySelector('#domain tbody'); dom.innerHTML = '';
  const events = [];
  for (const [name, s] of Object.entries(state.services)) {
    const last = s.recent[s.recent.length - 1];
    const tr = row([name, s.injected, s.dropped, last ? last.action + ' ' + last.subject : '']); tr.dataset.service = name; svcs.append(tr);
    for (const d of s.domain) events.push({ service: name, ...d });
  }
  events.sort((a, b) => b.atMs - a.atMs);
  for (const d of events) { const tr = row([d.service, d.kind, d.n, new Date(d.atMs).toLocaleTimeString(), d.detail]); tr.className = 'domain-event'; dom.append(tr); }
}
async function refresh() {
  const res = await fetch('/api/faults');
  const out = await res.json();
  if (!res.ok) { msg(out.code + ': ' + out.message, true); return; }
  show(out);
}
document.getElementById('add-rule').onsubmit = async (e) => {
  e.preventDefault();
  const f = new FormData(e.target);
  const rule = { id: f.get('id'), subject: f.get('subject'), action: f.get('action') };
  if (f.get('probability')) rule.probability = Number(f.get('probability'));
  if (f.get('delayMs')) rule.delayMs = Number(f.get('delayMs'));
  const out = await send('/api/faults/rules', rule);
  if (out) { msg('rule ' + rule.id + ' set on every service'); show(out); }
};
document.querySelector('#add-rule .clear').onclick = async () => { const out = await send('/api/faults/clear', {}); if (out) { msg('all rules cleared'); show(out); } };
document.getElementById('inject').onsubmit = async (e) => {
  e.preventDefault();
  const f = new FormData(e.target);
  const opt = e.target.querySelector('select[name=kind]').selectedOptions[0];
  const body = { service: opt.dataset.service, kind: f.get('kind') };
  if (f.get('count')) body.count = Number(f.get('count'));
  const out = await send('/api/faults/inject', body);
  if (out) { msg(body.kind + ' armed on ' + body.service + (out.armed ? ' (' + out.armed + ' to go)' : ' (fired)')); refresh(); }
};
refresh(); setInterval(refresh, 1000);`;
  return layout('faults', body, script);
}
