import { existsSync, readFileSync } from 'node:fs';
import type { RealConfig } from './configs.js';
import { dom0MachineRange, parseGuestLines } from './console-parse.js';
import { ReferenceError } from './errors.js';
import { kernelArgs, machineArgs, prepareScratch } from './qemu-launch.js';
import { withQemu } from './qemu-process.js';
import { Qmp } from './qmp.js';
import { qemuFeaturesToHex, qemuStatusToByte } from './qemu-features.js';
import { buildReport, type DeviceView, type RealReport } from './real-report.js';
import type { SetupState } from './setup-state.js';

export interface RealRunOptions {
  setup: SetupState;
  /** Scratch space for this run (initramfs, disk, sockets); default under the reference dir. */
  workDir?: string;
  progress?: (line: string) => void;
  /** Guest console lines, as they arrive (for --verbose). */
  onConsole?: (line: string) => void;
  /** Hard limit for the QEMU process; default 150 s with Xen, 90 s without. */
  timeoutMs?: number;
}

/** The VirtIODevice in QOM: a PCI proxy holds it as virtio-backend; on virtio-mmio it is the device itself. */
const deviceQom = (cfg: RealConfig): string =>
  cfg.machine === 'microvm'
    ? '/machine/peripheral/vblk'
    : '/machine/peripheral/vblk/virtio-backend';
/**
 * microvm's default firmware (qboot) starts no kernel here; Debian's SeaBIOS
 * build for microvm (package seabios, a dependency of qemu-system-x86) does.
 */
export const MICROVM_BIOS = '/usr/share/seabios/bios-microvm.bin';

/** The QEMU command line for a configuration. */
export function qemuArgs(
  cfg: RealConfig,
  setup: SetupState,
  files: { initrd: string; disk: string; qmp: string; trace: string },
): string[] {
  const guestArgs = [
    'quiet',
    `nestlab.mode=${cfg.mode}`,
    `nestlab.ios=${cfg.ios}`,
    ...cfg.kernelArgs,
  ].join(' ');
  const args = [
    ...machineArgs({
      xen: cfg.xen,
      machine: [cfg.machine, cfg.machineProps].filter(Boolean).join(','),
      memMiB: cfg.xen ? 2048 : 1024,
    }),
    ...(cfg.machine === 'microvm' ? ['-bios', MICROVM_BIOS] : []),
    ...['-qmp', `unix:${files.qmp},server=on,wait=off`],
  ];
  // The vIOMMU must exist before the devices it translates for.
  if (cfg.viommu)
    args.push(
      '-device',
      'intel-iommu',
      '-trace',
      'vtd_dmar_translate',
      '-trace',
      'vtd_dmar_fault',
      '-D',
      files.trace,
    );
  for (const bus of cfg.buses ?? []) args.push('-device', bus);
  args.push(
    '-drive',
    `file=${files.disk},format=raw,if=none,id=d0`,
    '-device',
    [
      cfg.machine === 'microvm' ? 'virtio-blk-device' : 'virtio-blk-pci',
      'drive=d0',
      'id=vblk',
      cfg.device,
    ]
      .filter(Boolean)
      .join(','),
  );
  return [...args, ...kernelArgs(setup, { xen: cfg.xen, initrd: files.initrd, guestArgs })];
}

const field = (o: unknown, k: string): unknown =>
  o && typeof o === 'object' ? (o as Record<string, unknown>)[k] : undefined;
const hexOf = (v: unknown): string | null =>
  typeof v === 'number' || typeof v === 'bigint' ? `0x${v.toString(16)}` : null;

async function askDevice(
  qmp: Qmp,
  path: string,
  view: DeviceView,
  errors: string[],
): Promise<void> {
  try {
    const q = await qmp.execute('x-query-virtio-queue-status', { path, queue: 0 });
    view.desc = hexOf(field(q, 'vring-desc'));
    view.avail = hexOf(field(q, 'vring-avail'));
    view.used = hexOf(field(q, 'vring-used'));
  } catch (e) {
    errors.push(`x-query-virtio-queue-status: ${(e as Error).message}`);
  }
  try {
    const s = await qmp.execute('x-query-virtio-status', { path });
    view.status = qemuStatusToByte(field(s, 'status'));
    view.offered = qemuFeaturesToHex(field(s, 'host-features'));
    view.negotiated = qemuFeaturesToHex(field(s, 'guest-features'));
  } catch (e) {
    errors.push(`x-query-virtio-status: ${(e as Error).message}`);
  }
}

/** Boots the real stack for one configuration, runs the guest workload, and always stops QEMU. */
export async function runReal(cfg: RealConfig, opts: RealRunOptions): Promise<RealReport> {
  const progress = opts.progress ?? (() => undefined);
  const started = Date.now();
  const scratch = prepareScratch(opts.setup, `${cfg.scenario}-`, {
    workDir: opts.workDir,
    diskBytes: 64 << 20,
  });
  const files = {
    initrd: scratch.initrd,
    disk: scratch.disk,
    qmp: scratch.file('qmp.sock'),
    trace: scratch.file('trace.log'),
  };
  const errors: string[] = [];
  const view: DeviceView = {
    desc: null,
    avail: null,
    used: null,
    status: null,
    offered: null,
    negotiated: null,
    translated: null,
    faulted: null,
    availAtDevice: null,
    availAtDriver: null,
  };
  let bootMs: number | null = null;
  progress(`booting ${cfg.summary}`);
  try {
    const { lines, exit } = await withQemu(
      {
        binary: opts.setup.qemu,
        args: qemuArgs(cfg, opts.setup, files),
        timeoutMs: opts.timeoutMs ?? (cfg.xen ? 150_000 : 90_000),
        ...(opts.onConsole ? { onLine: opts.onConsole } : {}),
      },
      async (q) => {
        const qmp = await Qmp.connect(files.qmp).catch((cause: unknown) => {
          const said = q.lines
            .filter((l) => l.startsWith('[qemu]'))
            .slice(-3)
            .join(' ');
          throw new ReferenceError(
            'QEMU_START_FAILED',
            'environment',
            `QEMU did not start: ${said || (cause as Error).message}`,
            { cause },
          );
        });
        try {
          const init = await q.waitForLine(/NESTLAB phase=init/, 1e9);
          if (init) bootMs = Date.now() - started;
          const done = await q.waitForLine(/NESTLAB phase=done/, 1e9);
          if (!done)
            errors.push(
              q.running ? 'the guest did not finish' : 'QEMU exited before the guest finished',
            );
          if (q.running) {
            await askDevice(qmp, deviceQom(cfg), view, errors);
            await lookAtRings(qmp, q.lines, view);
          }
          await qmp.execute('quit').catch(() => undefined);
        } finally {
          qmp.close();
        }
      },
    );
    if (exit.timedOut) errors.push(`QEMU hit its hard timeout and was killed`);
    if (cfg.viommu) countTrace(files.trace, view);
    const facts = parseGuestLines(lines);
    const report = buildReport(cfg, facts, view, cfg.xen ? dom0MachineRange(lines) : null, errors);
    return { ...report, bootMs, elapsedMs: Date.now() - started };
  } finally {
    scratch.remove();
  }
}

/** `xp` of the avail header where the device looks and where the driver wrote it (misdirection evidence). */
async function lookAtRings(qmp: Qmp, lines: readonly string[], view: DeviceView): Promise<void> {
  const facts = parseGuestLines(lines);
  const qsize = Number(facts.get('queue.size') ?? 0);
  const machine = facts.get('ring.machine');
  if (!qsize || !view.avail || !machine) return;
  const driverAvail = BigInt(machine) + BigInt(16 * qsize);
  const xp = async (a: bigint) => (await qmp.hmp(`xp /2xh 0x${a.toString(16)}`)).trim();
  view.availAtDevice = await xp(BigInt(view.avail)).catch(() => null);
  view.availAtDriver = await xp(driverAvail).catch(() => null);
}

function countTrace(path: string, view: DeviceView): void {
  if (!existsSync(path)) return;
  const text = readFileSync(path, 'utf8');
  view.translated = (text.match(/vtd_dmar_translate/g) ?? []).length;
  view.faulted = (text.match(/vtd_dmar_fault/g) ?? []).length;
}
