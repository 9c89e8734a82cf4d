import type { Outcome, RunReport } from '@nestlab/formats';
import type { Scenario } from '../scenarios/scenario.js';

export type { RunReport };

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
    `The device sits behind the IOMMU, but the driver passed addresses nobody mapped: ${r.dma.faulted} accesses faulted and were not performed.` +
    (r.dma.deviceLocal
      ? ` Its rings sit in its own memory: ${r.dma.deviceLocal} ring accesses stayed on the card, none faulted.`
      : ''),
  'features-rejected': (r) =>
    `The device requires ACCESS_PLATFORM and refused FEATURES_OK; the driver set FAILED (${r.driver.error?.message ?? 'no detail'}). No DMA happened.`,
  'isolation-bypass': (r) =>
    `I/O worked, but the device bypassed the IOMMU (${r.dma.bypassed}/${r.dma.total} accesses) and a rogue access outside any mapping succeeded.`,
  'silent-corruption': (r) =>
    `The device found every ring and completed ${r.ios.completed} I/Os, but it read and wrote their buffers ` +
    `at pseudo-physical numbers taken as machine addresses: ${r.dma.misdirected} accesses hit frames of ` +
    `${r.firstMisdirected?.owner ?? 'another owner'} instead of dom0's. The driver saw completions and no error.`,
  corruption: (r) => `${r.ios.corrupted} reads returned data that is not what was written.`,
  timeout: (r) => `${r.ios.failed} I/Os did not complete by their deadline.`,
};

const ATTACHMENT: Record<string, (exempt: string) => string> = {
  none: () => 'no IOMMU in its path',
  virtio: () => 'behind the IOMMU, translated only with ACCESS_PLATFORM',
  physical: () => 'a hardware card: always translated by the IOMMU',
  'virtio-exempt': (e) =>
    `virtio exempt from the IOMMU${e ? ` (exempt buses ${e})` : ''} unless ACCESS_PLATFORM`,
  'virtio-translated-bus': (e) =>
    `NOT on a virtio-exempt bus (exempt: ${e || 'none'}): translated by the IOMMU whatever was negotiated`,
};

/** Where the device sits and how the IOMMU treats it, in one line (null for reports without it). */
export function describeDevice(r: RunReport): string | null {
  const d = r.device;
  if (!d) return null;
  const how = ATTACHMENT[d.iommu]?.(d.exemptBuses.join(', ')) ?? d.iommu;
  return `${d.bdf} on bus ${d.bus}; ${how}`;
}

export function explainOutcome(r: RunReport): string {
  const said = SENTENCES[r.outcome](r);
  return r.device?.iommu === 'virtio-translated-bus'
    ? `${said} The virtio device sits on bus ${r.device.bus}, which the per-bus virtio exemption (${r.device.exemptBuses.join(', ')}) does not cover.`
    : said;
}

export function formatReport(r: RunReport, scenario: Scenario): string {
  const rows: [string, string][] = [
    ['scenario', `${r.scenario} — ${scenario.title}`],
    ['expected / observed', `${r.expected} / ${r.outcome}  ${r.pass ? 'PASS' : 'FAIL'}`],
    ['device', describeDevice(r) ?? 'not recorded'],
    ['features', `offered ${r.features.offered}, negotiated ${r.features.negotiated}`],
    [
      'I/Os',
      `submitted ${r.ios.submitted}, completed ${r.ios.completed}, verified ${r.ios.verified}, corrupted ${r.ios.corrupted}, failed ${r.ios.failed}`,
    ],
    [
      'DMA accesses',
      `${r.dma.total} total: translated ${r.dma.translated}, bypass ${r.dma.bypassed}, direct ${r.dma.direct}; intended ${r.dma.intended}, misdirected ${r.dma.misdirected}, faulted ${r.dma.faulted}` +
        (r.dma.deviceLocal ? `; ${r.dma.deviceLocal} ring accesses in device memory (no DMA)` : ''),
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
  if (r.astray) {
    const owners = Object.entries(r.astray.byOwner)
      .map(([o, n]) => `${o} ${n}`)
      .join(', ');
    rows.push([
      'data astray',
      `${r.astray.framesTotal} frames hit (accesses by owner: ${owners}); ${r.astray.reads} reads delivered elsewhere`,
    ]);
  }
  if (r.traceIds[0]) rows.push(['first trace', r.traceIds[0]]);
  const width = Math.max(...rows.map(([k]) => k.length));
  return `${rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n')}\n\n${explainOutcome(r)}\n`;
}
