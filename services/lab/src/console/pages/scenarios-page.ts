import { layout } from './layout.js';

/** Each scenario, its last run, expected vs observed, a button to run it, and live DMA verdicts. */
export function scenariosPage(): string {
  const body = `
<h2>Scenarios</h2>
<table id="scenarios"><thead><tr><th>scenario</th><th>expected</th><th>observed</th><th></th><th>trace</th><th></th></tr></thead><tbody></tbody></table>
<h3>Live DMA verdicts</h3>
<div id="live" class="mono muted">idle</div>
<button id="cancel" hidden>Cancel the run</button>
<p class="muted">From a shell: <code>nestlab run &lt;scenario&gt;</code>, <code>nestlab matrix</code>, <code>nestlab trace &lt;traceId&gt;</code>.</p>`;
  const script = `
const tbody = document.querySelector('#scenarios tbody');
function cell(text, cls) { const td = document.createElement('td'); td.textContent = text; if (cls) td.className = cls; return td; }
async function load() {
  const { scenarios } = await (await fetch('/api/scenarios')).json();
  tbody.innerHTML = '';
  for (const s of scenarios) {
    const tr = document.createElement('tr'); tr.dataset.id = s.id;
    const name = cell(''); name.innerHTML = '<b></b><br><span class="muted"></span>';
    name.querySelector('b').textContent = s.id; name.querySelector('span').textContent = s.title;
    tr.append(name, cell(s.expected));
    const r = s.lastRun;
    tr.append(cell(r ? r.outcome : '—', 'observed'), cell(r ? (r.pass ? 'PASS' : 'FAIL') : '', r ? (r.pass ? 'pass' : 'fail') : ''));
    const tc = cell('');
    // Link the trace of the first wrong access when there is one: that is where the ladder is.
    const tid = r && ((r.firstMisdirected && r.firstMisdirected.traceId) || (r.traceIds && r.traceIds[0]));
    if (tid) { const a = document.createElement('a'); a.href = '/trace/' + tid; a.textContent = tid.slice(0, 12) + '…'; a.className = 'trace-link mono'; tc.append(a); }
    tr.append(tc);
    const bc = cell(''); const b = document.createElement('button'); b.textContent = 'Run'; b.className = 'run'; b.disabled = !s.runnable;
    b.onclick = async () => {
      document.querySelectorAll('button.run').forEach((x) => x.disabled = true); b.textContent = 'Running…';
      const res = await fetch('/api/scenarios/' + s.id + '/run', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      if (!res.ok) alert((await res.json()).message);
      await load();
    };
    bc.append(b); tr.append(bc); tbody.append(tr);
  }
}
document.getElementById('cancel').onclick = async () => {
  const res = await fetch('/api/run/cancel', { method: 'POST' });
  if (!res.ok) alert((await res.json()).message);
};
async function live() {
  try {
    const l = await (await fetch('/api/live')).json();
    const v = Object.entries(l.verdicts).map(([k, n]) => k + ' ' + n).join(' · ') || 'no DMA yet';
    document.getElementById('cancel').hidden = !l.running;
    document.getElementById('live').textContent = (l.running ? 'running ' + l.running.id + ': ' : 'last run: ') + v + '   (' + l.stats.traces + ' traces stored)';
  } catch {}
}
load(); live(); setInterval(live, 500);`;
  return layout('scenarios', body, script);
}
