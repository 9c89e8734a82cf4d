import { layout } from './layout.js';

/** Each scenario, its last run, expected vs observed, a button to run it, live DMA verdicts, real-guest runs. */
export function scenariosPage(): string {
  const body = `
<h2>Scenarios</h2>
<table id="scenarios"><thead><tr><th>scenario</th><th>expected</th><th>observed</th><th></th><th>trace</th><th></th></tr></thead><tbody></tbody></table>
<h3>Live DMA verdicts</h3>
<div id="live" class="mono muted">idle</div>
<button id="cancel" hidden>Cancel the run</button>
<h3 id="real-guest">Real-guest runs <span class="muted">— a real Linux guest's stock virtio_blk driver on nestlab's device, over vhost-user</span></h3>
<table id="real-guest-runs"><thead><tr><th>scenario</th><th>outcome</th><th>guest's view</th><th>nestlab's view (DMA log)</th><th>buffer bytes</th><th>trace</th></tr></thead><tbody></tbody></table>
<p id="real-guest-none" class="muted">None yet: <code>nestlab reference --device nestlab kvm-guest-baseline</code> saves one (with <code>nestlab up</code> running, its traces come here too).</p>
<h3>Recent traces <select id="stack" aria-label="stack"><option value="">all stacks</option></select></h3>
<table id="traces"><thead><tr><th>trace</th><th>root span</th><th>stack</th><th>services</th><th>spans</th><th>µs</th></tr></thead><tbody></tbody></table>
<p class="muted">From a shell: <code>nestlab run &lt;scenario&gt;</code>, <code>nestlab matrix</code>, <code>nestlab trace &lt;traceId&gt;</code>.</p>`;
  return layout('scenarios', body, 'scenarios');
}
