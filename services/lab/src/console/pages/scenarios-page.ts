import { layout } from './layout.js';

/** Each scenario, its last run, expected vs observed, a button to run it, and live DMA verdicts. */
export function scenariosPage(): string {
  const body = `
<h2>Scenarios</h2>
<table id="scenarios"><thead><tr><th>scenario</th><th>expected</th><th>observed</th><th></th><th>trace</th><th></th></tr></thead><tbody></tbody></table>
<h3>Live DMA verdicts</h3>
<div id="live" class="mono muted">idle</div>
<button id="cancel" hidden>Cancel the run</button>
<h3>Recent traces <select id="stack" aria-label="stack"><option value="">all stacks</option></select></h3>
<table id="traces"><thead><tr><th>trace</th><th>root span</th><th>stack</th><th>services</th><th>spans</th><th>µs</th></tr></thead><tbody></tbody></table>
<p class="muted">From a shell: <code>nestlab run &lt;scenario&gt;</code>, <code>nestlab matrix</code>, <code>nestlab trace &lt;traceId&gt;</code>.</p>`;
  return layout('scenarios', body, 'scenarios');
}
