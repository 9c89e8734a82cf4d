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
  return layout('faults', body, 'faults');
}
