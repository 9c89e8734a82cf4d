/**
 * The shared page frame: inline CSS and the page's script module, compiled from
 * ../client and served by the console itself (no external assets: it works offline).
 */
export function layout(title: string, body: string, script: PageScript): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${title} · nestlab</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  :root { --fg:#1d2330; --muted:#6b7385; --line:#e3e6ee; --ok:#1f8f4e; --bad:#c23b3b; --warn:#b7791f; }
  body { font: 14px/1.45 system-ui, sans-serif; color: var(--fg); margin: 0; }
  header { padding: 12px 24px; border-bottom: 1px solid var(--line); display:flex; gap:16px; align-items:baseline; }
  header a { color: inherit; text-decoration: none; font-weight: 600; }
  header a.nav { font-weight: 400; color: var(--muted); }
  main { padding: 16px 24px; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
  th { font-weight: 600; color: var(--muted); font-size: 12px; text-transform: uppercase; }
  code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 13px; }
  .pass { color: var(--ok); font-weight: 600; } .fail { color: var(--bad); font-weight: 600; }
  button { font: inherit; padding: 3px 10px; cursor: pointer; }
  .muted { color: var(--muted); }
  .bar { position:absolute; height: 14px; top: 3px; border-radius: 2px; opacity: .85; }
  .wf-row { position: relative; height: 20px; border-bottom: 1px solid #f3f4f8; cursor: pointer; }
  .wf-row:hover { background: #f6f8fc; }
  .wf-name { position:absolute; left: 0; width: 38%; overflow:hidden; white-space:nowrap; text-overflow: ellipsis; font-size: 12px; padding-top: 2px; }
  .wf-track { position:absolute; left: 40%; right: 0; top:0; bottom:0; }
  .svc-l0-hypervisor { background:#4c78a8 } .svc-xen { background:#f58518 } .svc-dom0-kernel { background:#54a24b }
  .svc-iommu { background:#b279a2 } .svc-lab { background:#9d755d } .svc-l0-vhost-user { background:#72b7b2 } .svc-unknown { background:#999 }
  .ladder { display:grid; grid-template-columns: 160px 200px 1fr; gap: 4px 12px; align-items: center; margin: 8px 0 20px; }
  .ladder .layer { font-weight: 600; } .ladder .arrow { grid-column: 1 / span 3; color: var(--muted); padding-left: 24px; font-size: 12px; }
  .verdict-misdirected { color: var(--bad); font-weight: 600; } .verdict-faulted { color: var(--warn); font-weight: 600; }
  #attrs { white-space: pre-wrap; background:#f7f8fb; padding: 8px; border-radius: 4px; }
</style></head>
<body><header><a href="/">nestlab console</a><a href="/" class="nav">scenarios</a><a href="/faults" class="nav">faults</a><span class="muted">${title}</span></header>
<main>${body}</main>
<script type="module" src="/assets/${script}.js"></script></body></html>`;
}

/** The page scripts in ../client, one per page. */
export type PageScript = 'scenarios' | 'trace' | 'faults';

/** Escapes text for an HTML attribute value or element body. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
