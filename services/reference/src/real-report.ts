import type { Outcome, RunReport } from '@nestlab/formats';
import type { RealConfig } from './configs.js';
import { hex, num, sysfsFeaturesToHex, type GuestFacts } from './console-parse.js';

/** What QEMU's monitor and trace events said about the device. */
export interface DeviceView {
  /** Ring addresses the device model uses (x-query-virtio-queue-status). */
  desc: string | null;
  avail: string | null;
  used: string | null;
  /** Raw device status and the features the driver acked, per QEMU (x-query-virtio-status). */
  status: number | null;
  offered: string | null;
  negotiated: string | null;
  /** vIOMMU translations and faults counted from -trace vtd_dmar_translate / vtd_dmar_fault. */
  translated: number | null;
  faulted: number | null;
  /** `xp` of the avail ring's header where the device looks and where the driver wrote it. */
  availAtDevice: string | null;
  availAtDriver: string | null;
}

/** A real run, in `nestlab run --json`'s shape where the field exists. */
export interface RealReport {
  scenario: string;
  stack: string;
  /** null: the run did not get far enough to say. */
  outcome: Outcome | null;
  ios: RunReport['ios'];
  dma: { translated: number | null; faulted: number | null };
  features: { offered: string | null; negotiated: string | null };
  driver: { ok: boolean; status: number | null; error: { code: string; message: string } | null };
  ring: { driverPseudo: string | null; driverMachine: string | null; given: string | null };
  /** Where the module found the device (PCI BDF) and the bus that is; null for the stock driver. */
  pci: { bdf: string; bus: string } | null;
  /**
   * The data buffer as the module saw it: where it sits, the address the device got and whose
   * machine frame that is; statusUnwritten counts completions whose status byte (sentinel 0xff)
   * never reached the driver.
   */
  data: {
    pseudo: string | null;
    machine: string | null;
    given: string | null;
    owner: string | null;
    statusUnwritten: number;
  };
  device: DeviceView;
  dom0Machine: { start: string; end: string } | null;
  /** As the lab reports it, without what only the emulation knows (host-physical, trace). */
  firstMisdirected: Omit<NonNullable<RunReport['firstMisdirected']>, 'hostPhys' | 'traceId'> | null;
  bootMs: number | null;
  elapsedMs: number;
  errors: string[];
  explanation: string;
}

const bigHex = (v: string | undefined): string | null =>
  v && /^0x[0-9a-f]+$/i.test(v) ? hex(BigInt(v)) : null;

/** Turns what the guest printed and what QEMU said into the report (everything but timings). */
export function buildReport(
  cfg: RealConfig,
  facts: GuestFacts,
  device: DeviceView,
  dom0Machine: RealReport['dom0Machine'],
  errors: string[],
): Omit<RealReport, 'bootMs' | 'elapsedMs'> {
  const rejected = facts.get('driver') === 'features-rejected';
  const ioDone = facts.get('io') === 'done';
  const submitted = num(facts, 'submitted') ?? 0;
  const completed =
    cfg.mode === 'stock'
      ? Math.min(num(facts, 'written') ?? 0, num(facts, 'read') ?? 0) * 2
      : (num(facts, 'completed') ?? 0);
  const ios = {
    submitted: rejected ? 0 : submitted,
    completed: rejected ? 0 : completed,
    verified: num(facts, 'verified') ?? 0,
    corrupted: num(facts, 'corrupted') ?? 0,
    failed: rejected ? 0 : (num(facts, 'failed') ?? Math.max(0, submitted - completed)),
  };
  const stockFeatures = facts.get('features');
  // The device's own view first (QEMU's monitor), then what the guest printed.
  const negotiated = rejected
    ? null
    : (device.negotiated ??
      (stockFeatures
        ? sysfsFeaturesToHex(stockFeatures)
        : bigHex(facts.get('features.negotiated'))));
  const ring = {
    driverPseudo: bigHex(facts.get('ring.pseudo')),
    driverMachine: bigHex(facts.get('ring.machine')),
    given: bigHex(facts.get('ring.given')),
  };
  const data = {
    pseudo: bigHex(facts.get('data.pseudo')),
    machine: bigHex(facts.get('data.machine')),
    given: bigHex(facts.get('data.given')),
    owner: facts.get('data.given.owner') ?? null,
    statusUnwritten: num(facts, 'status.unwritten') ?? 0,
  };
  const bdf = facts.get('probe');
  const pci = bdf && /^[0-9a-f]{4}:[0-9a-f]{2}:/.test(bdf) ? { bdf, bus: bdf.slice(0, 7) } : null;
  const status = num(facts, 'status') ?? (facts.get('status') ? Number(facts.get('status')) : null);
  const report: Omit<RealReport, 'bootMs' | 'elapsedMs'> = {
    scenario: cfg.scenario,
    stack: cfg.summary,
    outcome: null,
    ios,
    dma: { translated: device.translated, faulted: device.faulted },
    features: { offered: bigHex(facts.get('features.offered')) ?? device.offered, negotiated },
    driver: {
      ok: !rejected && !facts.has('error'),
      status: device.status ?? (Number.isFinite(status) ? status : null),
      error: rejected
        ? {
            code: 'FEATURES_REJECTED',
            message: `the device cleared FEATURES_OK (status ${facts.get('status')})`,
          }
        : facts.has('error')
          ? { code: 'GUEST_ERROR', message: facts.get('error') ?? '' }
          : null,
    },
    ring,
    pci,
    data,
    device,
    dom0Machine,
    firstMisdirected: null,
    errors,
    explanation: '',
  };
  // The device used a ring address that is not where the driver's ring sits in machine memory.
  const deviceDesc = device.desc ?? ring.given;
  if (ring.driverMachine && deviceDesc && BigInt(deviceDesc) !== BigInt(ring.driverMachine)) {
    report.firstMisdirected = {
      bus: deviceDesc,
      machine: deviceDesc,
      owner: ownerName(facts.get('ring.given.owner') ?? 'unknown'),
      intendedMachine: ring.driverMachine,
      pseudo: ring.driverPseudo,
      what: 'ring',
    };
  }
  // The ring is right but the buffers are not: the device moved data at the pseudo-physical address.
  if (!report.firstMisdirected && data.machine && data.given && data.given !== data.machine) {
    report.firstMisdirected = {
      bus: data.given,
      machine: data.given,
      owner: ownerName(data.owner ?? 'unknown'),
      intendedMachine: data.machine,
      pseudo: data.pseudo,
      what: 'buffer',
    };
  }
  if (!ioDone && !rejected) {
    errors.push('the guest did not report its I/O result');
    return { ...report, explanation: 'The real run did not get far enough to judge.' };
  }
  report.outcome = classify(cfg, report);
  report.explanation = explainReal(report);
  return report;
}

const ownerName = (owner: string): string =>
  owner === 'not-dom0' ? 'not-dom0 (Xen or free)' : owner;

export function classify(cfg: RealConfig, r: Omit<RealReport, 'bootMs' | 'elapsedMs'>): Outcome {
  if (r.driver.error?.code === 'FEATURES_REJECTED') return 'features-rejected';
  const all = r.ios.submitted > 0 && r.ios.completed === r.ios.submitted;
  // Completions arrived, yet the status byte the device wrote never reached the driver.
  if (r.ios.completed > 0 && r.data.statusUnwritten > 0) return 'silent-corruption';
  if (r.ios.corrupted > 0) return 'corruption';
  if (all && r.ios.verified > 0)
    return cfg.viommu && r.dma.translated === 0 ? 'isolation-bypass' : 'ok';
  if ((r.dma.faulted ?? 0) > 0) return 'iommu-fault';
  if (r.firstMisdirected) return 'misdirected-dma';
  return 'timeout';
}

function explainReal(r: Omit<RealReport, 'bootMs' | 'elapsedMs'>): string {
  switch (r.outcome) {
    case 'misdirected-dma':
      return `The driver put ${r.ring.given} (pseudo-physical) in the ring register; the device used ${r.firstMisdirected?.machine} as a machine address (${r.firstMisdirected?.owner}), while the ring sits at machine ${r.ring.driverMachine}. ${r.ios.failed} requests never completed.`;
    case 'silent-corruption':
      return `The ring was at its machine address, so ${r.ios.completed}/${r.ios.submitted} requests completed; but the buffers went out as pseudo-physical ${r.data.given} (the device used it as a machine address, ${r.firstMisdirected?.owner ?? 'owner unknown'}) while the data sits at machine ${r.data.machine}: ${r.data.statusUnwritten} status bytes never arrived, ${r.ios.corrupted} reads came back wrong.`;
    case 'iommu-fault':
      return `The device${r.pci ? ` (${r.pci.bdf}, bus ${r.pci.bus})` : ''} is behind the vIOMMU and the driver gave it unmapped physical addresses: ${r.dma.faulted} DMAR faults, ${r.ios.failed} requests never completed.`;
    case 'features-rejected':
      return 'QEMU cleared FEATURES_OK: the device has iommu_platform=on and the VERSION_1 driver did not accept ACCESS_PLATFORM; the driver set FAILED.';
    case 'isolation-bypass':
      return `I/O worked with the vIOMMU enabled, but the device went around it: ${r.dma.translated} translations.`;
    case 'ok':
      return `${r.ios.verified} blocks written and read back intact${r.dma.translated ? `, ${r.dma.translated} vIOMMU translations` : ''}.`;
    default:
      return `${r.ios.completed}/${r.ios.submitted} requests completed.`;
  }
}
