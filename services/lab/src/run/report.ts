import type { Outcome, Scenario } from '../scenarios/scenario.js';

/** The `nestlab run --json` report (shape fixed by the stack issue; fields are only ever added). */
export interface RunReport {
  scenario: string;
  expected: Outcome;
  outcome: Outcome;
  pass: boolean;
  seed: number;
  ios: {
    submitted: number;
    completed: number;
    verified: number;
    corrupted: number;
    failed: number;
  };
  dma: {
    total: number;
    translated: number;
    bypassed: number;
    direct: number;
    misdirected: number;
    /** Accesses through a mapping already unmapped when they happened (stale IOTLB). */
    stale: number;
    faulted: number;
    intended: number;
    outside: number;
  };
  features: { offered: string; negotiated: string };
  driver: { ok: boolean; status: number; error: { code: string; message: string } | null };
  traceIds: string[];
  firstMisdirected: {
    bus: string;
    machine: string;
    owner: string;
    intendedMachine: string | null;
    pseudo: string | null;
    hostPhys: string | null;
    what: string;
    /** The trace holding this access (with batching, not always the first I/O's). */
    traceId: string | null;
  } | null;
  rogue: { bus: string; verdict: string; machine: string | null; owner: string | null } | null;
  errors: Record<string, number>;
  latencyUs: { p50: number; p99: number };
  elapsedMs: number;
  /** The run was cancelled (console button, Ctrl-C): the job stopped submitting; never a pass. */
  cancelled?: boolean;
  explanation: string;
}

const SENTENCES: Record<Outcome, (r: RunReport) => string> = {
  ok: (r) =>
    `Every device access hit the frame behind the buffer the driver posted (${r.dma.intended}/${r.dma.total}` +
    `${r.dma.translated ? `, ${r.dma.translated} translated by the IOMMU` : ''}); ${r.ios.verified} I/Os verified.`,
  'misdirected-dma': (r) =>
    `The driver handed the device ${r.firstMisdirected?.pseudo ? `pseudo-physical ${r.firstMisdirected.pseudo}` : 'an address'} ` +
    `as a bus address; the device, which sees machine memory, touched machine ${r.firstMisdirected?.machine} ` +
    `(owned by ${r.firstMisdirected?.owner}) instead of ${r.firstMisdirected?.intendedMachine ?? 'the intended frame'} — ` +
    `${r.dma.misdirected} misdirected accesses, as in the 2014 thread.`,
  'iommu-fault': (r) =>
    `The device sits behind the IOMMU, but the driver passed addresses nobody mapped: ${r.dma.faulted} accesses faulted and were not performed.`,
  'features-rejected': (r) =>
    `The device requires ACCESS_PLATFORM and refused FEATURES_OK; the driver set FAILED (${r.driver.error?.message ?? 'no detail'}). No DMA happened.`,
  'isolation-bypass': (r) =>
    `I/O worked, but the device bypassed the IOMMU (${r.dma.bypassed}/${r.dma.total} accesses) and a rogue access outside any mapping succeeded.`,
  corruption: (r) => `${r.ios.corrupted} reads returned data that is not what was written.`,
  timeout: (r) => `${r.ios.failed} I/Os did not complete by their deadline.`,
};

export function explainOutcome(r: RunReport): string {
  const cancelled = r.cancelled
    ? `Cancelled after ${r.ios.submitted} I/Os; what ran is judged below. `
    : '';
  return cancelled + SENTENCES[r.outcome](r);
}

export function formatReport(r: RunReport, scenario: Scenario): string {
  const rows: [string, string][] = [
    ['scenario', `${r.scenario} — ${scenario.title}`],
    [
      'expected / observed',
      `${r.expected} / ${r.outcome}  ${r.cancelled ? 'CANCELLED' : r.pass ? 'PASS' : 'FAIL'}`,
    ],
    ['features', `offered ${r.features.offered}, negotiated ${r.features.negotiated}`],
    [
      'I/Os',
      `submitted ${r.ios.submitted}, completed ${r.ios.completed}, verified ${r.ios.verified}, corrupted ${r.ios.corrupted}, failed ${r.ios.failed}`,
    ],
    [
      'DMA accesses',
      `${r.dma.total} total: translated ${r.dma.translated}, bypass ${r.dma.bypassed}, direct ${r.dma.direct}; intended ${r.dma.intended}, misdirected ${r.dma.misdirected}, faulted ${r.dma.faulted}`,
    ],
    ['latency', `p50 ${r.latencyUs.p50} µs, p99 ${r.latencyUs.p99} µs, ${r.elapsedMs} ms total`],
  ];
  if (r.firstMisdirected) {
    const m = r.firstMisdirected;
    rows.push([
      'first misdirected',
      `${m.what}: pseudo ${m.pseudo ?? '?'} → bus ${m.bus} → machine ${m.machine} (owner ${m.owner}; intended ${m.intendedMachine ?? '?'})`,
    ]);
  }
  if (r.traceIds[0]) rows.push(['first trace', r.traceIds[0]]);
  const width = Math.max(...rows.map(([k]) => k.length));
  return `${rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n')}\n\n${explainOutcome(r)}\n`;
}
