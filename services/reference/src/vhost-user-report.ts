// The report of a run on nestlab's device: the real guest's view (did its
// I/O complete, what it read) beside nestlab's (the disk image, every DMA
// access and its verdict, the ring as the device used it), and its outcome.
import { num, type GuestFacts } from './console-parse.js';
import type { QemuExit } from './qemu-process.js';
import { metricTotals, type DmaSummary, type RingView } from './vhost-user-dma.js';
import type { VhostUserRow } from './vhost-user-rows.js';

/**
 * ok: the I/O worked and every access landed where the driver meant it;
 * misdirected-dma: the guest hung because the device read the ring at the
 * pseudo-physical number the driver wrote, used as a machine address.
 */
export type VhostUserOutcome = 'ok' | 'misdirected-dma' | 'failed' | 'killed';

export interface VhostUserReport {
  scenario: string;
  stack: string;
  outcome: VhostUserOutcome;
  /** The outcome the row shows on the real stack. */
  expected: VhostUserRow['expect'];
  guest: {
    wrote: boolean;
    read: boolean;
    sumPattern: string | null;
    sumBack: string | null;
    /** The reference module's requests (null with the stock driver). */
    io: { submitted: number; completed: number; failed: number } | null;
  };
  expectedSum: string;
  /** md5 of the first 4 MiB of nestlab's disk image after the run. */
  imageSum: string | null;
  dma: DmaSummary;
  /** The back-end's L0 metrics at exit: each series and its value. */
  metrics: Record<string, number>;
  ring: RingView;
  /** Xen's boot log: the machine range dom0's memory came from. */
  dom0Machine: { start: string; end: string } | null;
  backendLines: string[];
  errors: string[];
  qemuExit: QemuExit | null;
  backendExit: QemuExit | null;
  elapsedMs: number;
  explanation: string;
}

export function guestView(facts: GuestFacts): VhostUserReport['guest'] {
  const submitted = num(facts, 'submitted');
  return {
    wrote: facts.get('wrote') === '1',
    read: facts.get('read') === '1',
    sumPattern: facts.get('sum.pattern') ?? null,
    sumBack: facts.get('sum.back') ?? null,
    io:
      facts.get('io') === 'done' && submitted !== null
        ? {
            submitted,
            completed: num(facts, 'completed') ?? 0,
            failed: num(facts, 'failed') ?? 0,
          }
        : null,
  };
}

type Judged = Omit<VhostUserReport, 'outcome' | 'explanation'>;

export function outcomeOf(r: Judged, row: VhostUserRow, killed: boolean): VhostUserOutcome {
  if (killed) return 'killed';
  if (row.guest === 'module-pseudo') return misdirected(r) ? 'misdirected-dma' : 'failed';
  const g = r.guest;
  const sums = [g.sumPattern, g.sumBack, r.imageSum];
  const verdict = row.viommu ? 'translated' : 'direct';
  const allExpected = r.dma.records > 0 && r.dma.byVerdict[verdict] === r.dma.records;
  return g.wrote &&
    g.read &&
    sums.every((s) => s === r.expectedSum) &&
    allExpected &&
    r.errors.length === 0
    ? 'ok'
    : 'failed';
}

/**
 * The legacy row's hang: no request completed, the device was given the
 * pseudo-physical number the module wrote, that is not where the ring sits in
 * machine memory, and the device did read avail.idx there.
 */
function misdirected(r: Judged): boolean {
  const { driver, device, availIdx } = r.ring;
  const io = r.guest.io;
  return Boolean(
    io &&
    io.submitted > 0 &&
    io.completed === 0 &&
    driver?.given &&
    driver.machine &&
    device &&
    BigInt(device.desc) === BigInt(driver.given) &&
    BigInt(driver.given) !== BigInt(driver.machine) &&
    availIdx &&
    availIdx.reads > 0,
  );
}

export function explain(r: Judged, outcome: VhostUserOutcome): string {
  const { driver, device, availIdx } = r.ring;
  switch (outcome) {
    case 'misdirected-dma':
      return `The module wrote ${driver?.given} (pseudo-physical) in QUEUE_PFN; QEMU passed it on in SET_VRING_ADDR (desc ${device?.desc}, avail ${device?.avail}) and nestlab's device read avail.idx at machine ${availIdx?.machine} (${availIdx?.reads} reads, ${availIdx?.verdict}), a frame dom0 does not own (${driver?.givenOwner}); the driver published avail.idx at machine ${r.ring.driverAvailIdx} (ring at ${driver?.machine}). ${r.guest.io?.failed} requests never completed: the guest hangs.`;
    case 'ok':
      return `4 MiB written and read back intact; nestlab's image holds them; ${r.dma.records} accesses, every one ${Object.keys(r.dma.byVerdict).join('/')}; the ring at ${device?.desc ?? '-'} (${device?.space ?? '-'}).`;
    case 'killed':
      return 'One side was killed mid-run, as asked.';
    default:
      return `Not as on the real stack (expected ${r.expected}); see errors and the DMA summary.`;
  }
}

/** The text `nestlab reference --device nestlab` prints. */
export function formatVhostUserReport(r: VhostUserReport): string {
  const g = r.guest;
  const verdicts = Object.entries(r.dma.byVerdict)
    .map(([v, n]) => `${v} ${n}`)
    .join(', ');
  const { driver, device, availIdx } = r.ring;
  const lines = [
    `${r.scenario} on nestlab's device (vhost-user): ${r.outcome} (expected ${r.expected})`,
    `  stack:   ${r.stack}`,
    g.io
      ? `  guest:   ${g.io.completed}/${g.io.submitted} requests completed, ${g.io.failed} failed`
      : `  guest:   wrote 4 MiB ${g.wrote ? 'ok' : 'FAILED'}, read back ${g.read ? 'ok' : 'FAILED'}; md5 written ${g.sumPattern ?? '-'}, read ${g.sumBack ?? '-'}`,
    ...(g.io ? [] : [`  nestlab: disk image md5 ${r.imageSum ?? '-'} (expected ${r.expectedSum})`]),
    `  DMA log: ${r.dma.records} accesses (${verdicts || 'none'}); buffers read ${r.dma.bufferBytesRead} B, written ${r.dma.bufferBytesWritten} B`,
    `  metrics: ${
      Object.entries(metricTotals(r.metrics))
        .map(([name, v]) => `${name} ${v}`)
        .join(', ') || 'none'
    }`,
    ...(driver
      ? [
          `  driver:  ring pseudo ${driver.pseudo ?? '-'}, machine ${driver.machine ?? '-'}; wrote ${driver.given ?? '-'} (owner ${driver.givenOwner ?? '-'}); avail.idx at machine ${r.ring.driverAvailIdx ?? '-'}`,
        ]
      : []),
    `  device:  SET_VRING_ADDR desc ${device?.desc ?? '-'} avail ${device?.avail ?? '-'} used ${device?.used ?? '-'} (${device?.space ?? '-'}); avail.idx read at machine ${availIdx?.machine ?? '-'} (${availIdx ? `${availIdx.reads}×, ${availIdx.verdict}` : 'never'})`,
    ...(r.dom0Machine
      ? [`  Xen:     dom0 machine ${r.dom0Machine.start}->${r.dom0Machine.end}`]
      : []),
    `  ${r.explanation}`,
    ...r.errors.map((e) => `  error:   ${e}`),
  ];
  return lines.join('\n') + '\n';
}
