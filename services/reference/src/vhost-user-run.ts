// `nestlab reference --device nestlab <scenario>`: the real guest on QEMU TCG
// (plain Linux 6.1, or Xen 4.17 + Linux 6.1 PV dom0) with its virtio-blk disk
// served by nestlab's device model over vhost-user (QEMU's vhost-user-blk-pci
// is the front-end; guest RAM, with Xen its machine memory, is a shared memfd).
// The stock driver writes 4 MiB of a known pattern with O_DIRECT and reads it
// back, or the reference module drives the device itself; the report puts
// the guest's view beside nestlab's (disk image, every DMA access, the ring).
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, readSync } from 'node:fs';
import type { DmaRecord } from '@nestlab/protocol';
import { dom0MachineRange, parseGuestLines } from './console-parse.js';
import { ReferenceError } from './errors.js';
import { prepareScratch, startQemu } from './qemu-launch.js';
import { QemuProcess, type QemuExit } from './qemu-process.js';
import type { SetupState } from './setup-state.js';
import { readDmaLog, readMetrics, ringView, summarizeDma } from './vhost-user-dma.js';
import { explain, guestView, outcomeOf, type VhostUserReport } from './vhost-user-report.js';
import {
  QUEUE_SIZE,
  VHOST_USER_IDS,
  backendMain,
  vhostQemuArgs,
  vhostUserRow,
  type VhostUserRow,
} from './vhost-user-rows.js';

export const PATTERN_BYTES = 4 << 20;
const DISK_BYTES = 64 << 20;

/** The guest's pattern (guest/init pattern_io): 65536 numbered lines of 64 bytes. */
export function knownPattern(): Buffer {
  const lines: string[] = [];
  for (let i = 0; i < PATTERN_BYTES / 64; i++)
    lines.push(`nestlab vhost-user line ${String(i).padStart(8, '0')}`.padEnd(63) + '\n');
  return Buffer.from(lines.join(''), 'latin1');
}

const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex');

/** Where an interrupted run is cut short (for the cleanup test). */
export type KillPoint = { readonly who: 'qemu' | 'backend'; readonly afterDmaRecords: number };

export interface VhostUserRunOptions {
  setup: SetupState;
  /** One of VHOST_USER_IDS; default kvm-guest-baseline (viommu-access-platform with `viommu`). */
  scenario?: string;
  /** Shorthand for scenario viommu-access-platform. */
  viommu?: boolean;
  workDir?: string;
  progress?: (line: string) => void;
  onConsole?: (line: string) => void;
  /** Hard limit for each process; default 240 s. */
  timeoutMs?: number;
  /** Keep the scratch dir (disk image, DMA log) for a look afterwards. */
  keepWork?: boolean;
  /** Kill one side once the DMA log has this many records (tests of the cleanup). */
  kill?: KillPoint;
  /** Added to the back-end's environment: OTEL_EXPORTER_OTLP_ENDPOINT sends its spans there. */
  backendEnv?: Readonly<Record<string, string>>;
}

/** A run's whole result: the report and nestlab's per-access view (every DMA record, in order). */
export interface VhostUserRun {
  report: VhostUserReport;
  records: DmaRecord[];
}

export function resolveVhostUserRow(
  opts: Pick<VhostUserRunOptions, 'scenario' | 'viommu'>,
): VhostUserRow {
  const id = opts.scenario ?? (opts.viommu ? 'viommu-access-platform' : 'kvm-guest-baseline');
  const row = vhostUserRow(id);
  if (!row)
    throw new ReferenceError(
      'UNSUPPORTED_SCENARIO',
      'input',
      `--device nestlab runs ${VHOST_USER_IDS.join(', ')}; ${JSON.stringify(id)} is not one`,
    );
  return row;
}

/** The report only (`runOnNestlabDevice` also hands back every DMA record). */
export async function runVhostUser(opts: VhostUserRunOptions): Promise<VhostUserReport> {
  return (await runOnNestlabDevice(opts)).report;
}

export async function runOnNestlabDevice(opts: VhostUserRunOptions): Promise<VhostUserRun> {
  const row = resolveVhostUserRow(opts);
  const started = Date.now();
  const timeoutMs = opts.timeoutMs ?? 240_000;
  const scratch = prepareScratch(opts.setup, `vhost-user-${row.scenario}-`, {
    workDir: opts.workDir,
    diskBytes: DISK_BYTES,
  });
  const files = {
    initrd: scratch.initrd,
    socket: scratch.file('vhost.sock'),
    dmaLog: scratch.file('dma.jsonl'),
    metrics: scratch.file('metrics.prom'),
  };
  const errors: string[] = [];
  let qemu: QemuProcess | null = null as QemuProcess | null;
  const backend = QemuProcess.start({
    binary: process.execPath,
    args: [
      backendMain(),
      ...['--socket', files.socket, '--disk', scratch.disk],
      ...['--dma-log', files.dmaLog, '--metrics', files.metrics],
      ...['--disk-bytes', String(DISK_BYTES), '--queue-size', String(QUEUE_SIZE)],
      ...['--iommu', row.viommu ? 'virtio' : 'none'],
    ],
    timeoutMs,
    ...(opts.backendEnv ? { env: opts.backendEnv } : {}),
  });
  let killed = false;
  let qemuExit: QemuExit | null = null;
  let backendExit: QemuExit | null = null;
  try {
    try {
      killed = await drive(opts, row, files, backend, (q) => (qemu = q), errors, timeoutMs);
    } finally {
      qemuExit = qemu ? await (qemu as QemuProcess).stop() : null;
      // QEMU gone, the back-end sees its socket close and exits; a stuck one is killed.
      backendExit =
        (await Promise.race([
          backend.exited,
          new Promise<null>((r) => setTimeout(() => r(null), 10_000)),
        ])) ?? (await backend.stop());
    }
    const lines = (qemu as QemuProcess | null)?.lines ?? [];
    const facts = parseGuestLines(lines);
    const log = readDmaLog(files.dmaLog);
    errors.push(...log.errors);
    const backendLines = backend.lines.filter(
      (l) => l.startsWith('vhost-user:') || l.startsWith('[qemu]'),
    );
    const judged = {
      scenario: row.scenario,
      stack: row.summary,
      expected: row.expect,
      guest: guestView(facts),
      expectedSum: md5(knownPattern()),
      imageSum: imageSum(scratch.disk),
      dma: summarizeDma(log.records),
      metrics: readMetrics(files.metrics),
      ring: ringView(facts, backendLines, log.records, QUEUE_SIZE),
      dom0Machine: row.xen ? dom0MachineRange(lines) : null,
      backendLines,
      errors,
      qemuExit,
      backendExit,
      elapsedMs: Date.now() - started,
    };
    const outcome = outcomeOf(judged, row, killed);
    return {
      report: { ...judged, outcome, explanation: explain(judged, outcome) },
      records: log.records,
    };
  } finally {
    if (opts.keepWork) opts.progress?.(`kept ${scratch.dir}`);
    else scratch.remove();
  }
}

function imageSum(path: string): string | null {
  if (!existsSync(path)) return null;
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(PATTERN_BYTES);
    readSync(fd, b, 0, PATTERN_BYTES, 0);
    return md5(b);
  } finally {
    closeSync(fd);
  }
}

/** Lines in the DMA log file so far (cheap: counts newlines). */
function dmaLines(path: string): number {
  if (!existsSync(path)) return 0;
  let n = 0;
  for (const c of readFileSync(path)) if (c === 10) n++;
  return n;
}

/** Starts QEMU once the back-end listens, waits for the guest (or kills a side); true when killed. */
async function drive(
  opts: VhostUserRunOptions,
  row: VhostUserRow,
  files: { initrd: string; socket: string; dmaLog: string },
  backend: QemuProcess,
  started: (q: QemuProcess) => void,
  errors: string[],
  timeoutMs: number,
): Promise<boolean> {
  const progress = opts.progress ?? (() => undefined);
  if (!(await backend.waitForLine(/vhost-user: listening/, 30_000))) {
    throw new ReferenceError(
      'QEMU_START_FAILED',
      'environment',
      `the vhost-user back-end did not start: ${backend.lines.slice(-3).join(' ')}`,
    );
  }
  progress(`booting ${row.summary}, its disk served by nestlab (vhost-user)`);
  const q = startQemu(opts.setup, vhostQemuArgs(opts.setup, row, files), {
    timeoutMs,
    onConsole: opts.onConsole,
  });
  started(q);
  if (opts.kill) {
    const k = opts.kill;
    await new Promise<void>((resolve) => {
      const t = setInterval(() => {
        if (dmaLines(files.dmaLog) >= k.afterDmaRecords || !q.running || !backend.running) {
          clearInterval(t);
          resolve();
        }
      }, 100);
    });
    const victim = k.who === 'qemu' ? q : backend;
    progress(`killing ${k.who} (pid ${victim.pid}) mid-run`);
    process.kill(victim.pid, 'SIGKILL');
    await victim.exited;
    return true;
  }
  // The guest finishes, or either side dies (the other is then stopped by the caller).
  const done = q.waitForLine(/NESTLAB phase=done/, timeoutMs);
  const gone = Promise.race([q.exited, backend.exited]).then(() => null);
  if (!(await Promise.race([done, gone])))
    errors.push(
      !backend.running
        ? 'the vhost-user back-end exited before the guest finished'
        : q.running
          ? 'the guest did not finish'
          : 'QEMU exited before the guest finished',
    );
  return false;
}
