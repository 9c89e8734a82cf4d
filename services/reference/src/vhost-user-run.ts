// `nestlab reference --device nestlab`: the plain Linux 6.1 guest on QEMU TCG
// with its virtio-blk disk served by nestlab's device model over vhost-user
// (QEMU's vhost-user-blk-pci is the front-end; guest RAM is a shared memfd).
// The guest writes 4 MiB of a known pattern with O_DIRECT and reads it back;
// the report puts its view (did the I/O complete, what it read) beside
// nestlab's (the disk image's bytes, every DMA access and its verdict).
import { createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  ftruncateSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { parseGuestLines } from './console-parse.js';
import { ReferenceError } from './errors.js';
import { buildInitramfs } from './initramfs.js';
import { QemuProcess, type QemuExit } from './qemu-process.js';
import { referenceDir, type SetupState } from './setup-state.js';

export const PATTERN_BYTES = 4 << 20;
const DISK_BYTES = 64 << 20;
const GUEST_MIB = 512;
const QUEUE_SIZE = 128;

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
  workDir?: string;
  progress?: (line: string) => void;
  onConsole?: (line: string) => void;
  /** Hard limit for each process; default 240 s. */
  timeoutMs?: number;
  /**
   * QEMU's vIOMMU in front (q35 + intel-iommu, iommu_platform=on): the device
   * translates every address through its IOTLB, and the verdicts say `translated`.
   */
  viommu?: boolean;
  /** Keep the scratch dir (disk image, DMA log) for a look afterwards. */
  keepWork?: boolean;
  /** Kill one side once the DMA log has this many records (tests of the cleanup). */
  kill?: KillPoint;
  /** Added to the back-end's environment: OTEL_EXPORTER_OTLP_ENDPOINT sends its spans there. */
  backendEnv?: Readonly<Record<string, string>>;
}

export interface DmaSummary {
  records: number;
  byVerdict: Record<string, number>;
  byWhat: Record<string, number>;
  /** Buffer bytes the device read from guest RAM (the guest's writes) and wrote into it (its reads). */
  bufferBytesRead: number;
  bufferBytesWritten: number;
  /** The first distinct traces that moved buffer bytes (one per kick that had I/O), to browse them. */
  traceIds: string[];
}

const TRACE_IDS_KEPT = 64;

export interface VhostUserReport {
  outcome: 'ok' | 'failed' | 'killed';
  guest: { wrote: boolean; read: boolean; sumPattern: string | null; sumBack: string | null };
  expectedSum: string;
  /** md5 of the first 4 MiB of nestlab's disk image after the run. */
  imageSum: string | null;
  dma: DmaSummary;
  backendLines: string[];
  errors: string[];
  qemuExit: QemuExit | null;
  backendExit: QemuExit | null;
  elapsedMs: number;
}

/** The vhost-user back-end's entry point in the l0-hypervisor package. */
export function backendMain(): string {
  const index = createRequire(import.meta.url).resolve('@nestlab/l0-hypervisor');
  return join(dirname(index), 'vhost-user', 'main.js');
}

export function vhostQemuArgs(
  setup: SetupState,
  files: { initrd: string; socket: string },
  viommu = false,
): string[] {
  const device = [
    'vhost-user-blk-pci,chardev=vu,num-queues=1',
    `queue-size=${QUEUE_SIZE}`,
    // Behind a PCIe root port the device is a PCIe endpoint with ATS, so the
    // guest sends device-IOTLB invalidations: the only unmaps QEMU 7.2's vhost
    // passes on to a back-end (as VHOST_USER_IOTLB_MSG INVALIDATE).
    ...(viommu ? ['bus=rp0', 'disable-legacy=on', 'iommu_platform=on', 'ats=on'] : []),
  ].join(',');
  return [
    ...['-accel', 'tcg', '-cpu', 'max', '-machine', viommu ? 'q35' : 'pc', '-m', String(GUEST_MIB)],
    // Guest RAM in a memfd QEMU shares: the back-end reaches it through the fd.
    ...['-object', `memory-backend-memfd,id=mem,size=${GUEST_MIB}M,share=on`],
    ...['-numa', 'node,memdev=mem'],
    ...['-nodefaults', '-display', 'none', '-no-reboot', '-serial', 'stdio'],
    // The vIOMMU must exist before the devices it translates for.
    ...(viommu ? ['-device', 'intel-iommu,intremap=on,device-iotlb=on'] : []),
    ...(viommu ? ['-device', 'pcie-root-port,id=rp0,bus=pcie.0,chassis=1,slot=1'] : []),
    ...['-chardev', `socket,id=vu,path=${files.socket}`],
    ...['-device', device],
    ...['-kernel', setup.vmlinuz, '-initrd', files.initrd],
    ...['-append', `console=ttyS0 quiet nestlab.mode=pattern${viommu ? ' intel_iommu=on' : ''}`],
  ];
}

export function summarizeDmaLog(path: string): DmaSummary {
  const s: DmaSummary = {
    records: 0,
    byVerdict: {},
    byWhat: {},
    bufferBytesRead: 0,
    bufferBytesWritten: 0,
    traceIds: [],
  };
  if (!existsSync(path)) return s;
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line) continue;
    const r = JSON.parse(line) as {
      verdict: string;
      what: string;
      write: boolean;
      len: number;
      traceId?: string;
    };
    s.records++;
    const io = r.what === 'buffer' && r.traceId;
    if (io && s.traceIds.length < TRACE_IDS_KEPT && !s.traceIds.includes(io)) s.traceIds.push(io);
    s.byVerdict[r.verdict] = (s.byVerdict[r.verdict] ?? 0) + 1;
    s.byWhat[r.what] = (s.byWhat[r.what] ?? 0) + 1;
    if (r.what === 'buffer' && r.verdict !== 'faulted') {
      if (r.write) s.bufferBytesWritten += r.len;
      else s.bufferBytesRead += r.len;
    }
  }
  return s;
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

export async function runVhostUser(opts: VhostUserRunOptions): Promise<VhostUserReport> {
  const started = Date.now();
  const timeoutMs = opts.timeoutMs ?? 240_000;
  const base = opts.workDir ?? join(referenceDir(), 'runs');
  mkdirSync(base, { recursive: true });
  const work = mkdtempSync(join(base, 'vhost-user-'));
  const files = {
    initrd: buildInitramfs(opts.setup, work),
    disk: join(work, 'disk.img'),
    socket: join(work, 'vhost.sock'),
    dmaLog: join(work, 'dma.jsonl'),
  };
  const fd = openSync(files.disk, 'w');
  ftruncateSync(fd, DISK_BYTES);
  closeSync(fd);
  const errors: string[] = [];
  let qemu: QemuProcess | null = null as QemuProcess | null;
  const backend = QemuProcess.start({
    binary: process.execPath,
    args: [
      backendMain(),
      ...['--socket', files.socket, '--disk', files.disk, '--dma-log', files.dmaLog],
      ...['--disk-bytes', String(DISK_BYTES), '--queue-size', String(QUEUE_SIZE)],
      ...['--iommu', opts.viommu ? 'virtio' : 'none'],
    ],
    timeoutMs,
    ...(opts.backendEnv ? { env: opts.backendEnv } : {}),
  });
  let killed = false;
  let qemuExit: QemuExit | null = null;
  let backendExit: QemuExit | null = null;
  try {
    try {
      killed = await drive(opts, files, backend, (q) => (qemu = q), errors, timeoutMs);
    } finally {
      qemuExit = qemu ? await (qemu as QemuProcess).stop() : null;
      // QEMU gone, the back-end sees its socket close and exits; a stuck one is killed.
      backendExit =
        (await Promise.race([
          backend.exited,
          new Promise<null>((r) => setTimeout(() => r(null), 10_000)),
        ])) ?? (await backend.stop());
    }
    const facts = parseGuestLines((qemu as QemuProcess | null)?.lines ?? []);
    const report: VhostUserReport = {
      outcome: 'failed',
      guest: {
        wrote: facts.get('wrote') === '1',
        read: facts.get('read') === '1',
        sumPattern: facts.get('sum.pattern') ?? null,
        sumBack: facts.get('sum.back') ?? null,
      },
      expectedSum: md5(knownPattern()),
      imageSum: imageSum(files.disk),
      dma: summarizeDmaLog(files.dmaLog),
      backendLines: backend.lines.filter(
        (l) => l.startsWith('vhost-user:') || l.startsWith('[qemu]'),
      ),
      errors,
      qemuExit,
      backendExit,
      elapsedMs: Date.now() - started,
    };
    report.outcome = killed ? 'killed' : verdictOf(report, opts.viommu ? 'translated' : 'direct');
    return report;
  } finally {
    if (opts.keepWork) opts.progress?.(`kept ${work}`);
    else rmSync(work, { recursive: true, force: true });
  }
}

/** Starts QEMU once the back-end listens, waits for the guest (or kills a side); true when killed. */
async function drive(
  opts: VhostUserRunOptions,
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
  progress('booting a plain Linux 6.1 guest with its disk served by nestlab (vhost-user)');
  const q = QemuProcess.start({
    binary: opts.setup.qemu,
    args: vhostQemuArgs(opts.setup, files, opts.viommu ?? false),
    timeoutMs,
    ...(opts.onConsole ? { onLine: opts.onConsole } : {}),
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

function verdictOf(r: VhostUserReport, verdict: 'direct' | 'translated'): 'ok' | 'failed' {
  const g = r.guest;
  const sums = [g.sumPattern, g.sumBack, r.imageSum];
  const allExpected = r.dma.records > 0 && r.dma.byVerdict[verdict] === r.dma.records;
  return g.wrote &&
    g.read &&
    sums.every((s) => s === r.expectedSum) &&
    allExpected &&
    r.errors.length === 0
    ? 'ok'
    : 'failed';
}
