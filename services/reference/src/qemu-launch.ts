// What every reference boot shares, whether QEMU emulates the virtio-blk
// device itself (run-real.ts) or hands it to nestlab over vhost-user
// (vhost-user-run.ts): a scratch dir with the guest's initramfs and a sparse
// disk, QEMU's machine under TCG with the console on stdio, and either Xen
// with the dom0 kernel as a multiboot module or the plain kernel.
import { closeSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ReferenceError } from './errors.js';
import { buildInitramfs } from './initramfs.js';
import { QemuProcess } from './qemu-process.js';
import { referenceDir, type SetupState } from './setup-state.js';

export interface Scratch {
  readonly dir: string;
  readonly initrd: string;
  readonly disk: string;
  /** A file of this run's dir (sockets, logs). */
  file(name: string): string;
  /** Deletes the dir (a run keeps it only when asked). */
  remove(): void;
}

/** A fresh dir under `<workDir or reference dir>/runs/<prefix>…` with the initramfs and an empty disk. */
export function prepareScratch(
  setup: SetupState,
  prefix: string,
  opts: { workDir?: string | undefined; diskBytes: number },
): Scratch {
  const base = opts.workDir ?? join(referenceDir(), 'runs');
  mkdirSync(base, { recursive: true });
  const dir = mkdtempSync(join(base, prefix));
  const initrd = buildInitramfs(setup, dir);
  const disk = join(dir, 'disk.img');
  const fd = openSync(disk, 'w');
  ftruncateSync(fd, opts.diskBytes);
  closeSync(fd);
  return {
    dir,
    initrd,
    disk,
    file: (name) => join(dir, name),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export interface MachineSpec {
  xen: boolean;
  /** -machine with its properties, e.g. `q35` or `pc`. */
  machine: string;
  memMiB: number;
  /**
   * Guest RAM in a memfd QEMU shares (vhost-user): the back-end reaches it
   * through the fd, so Xen's machine memory is what nestlab's device reads.
   */
  sharedRam?: boolean;
}

/** TCG, the machine, RAM and a serial console on stdio; no default devices. */
export function machineArgs(m: MachineSpec): string[] {
  return [
    ...['-accel', 'tcg'],
    // A PV dom0 under TCG faults at its first iretq while SMAP is advertised.
    ...['-cpu', m.xen ? 'max,-smap' : 'max'],
    ...['-machine', m.machine, '-m', String(m.memMiB)],
    ...(m.sharedRam
      ? [
          ...['-object', `memory-backend-memfd,id=mem,size=${m.memMiB}M,share=on`],
          ...['-numa', 'node,memdev=mem'],
        ]
      : []),
    ...['-nodefaults', '-display', 'none', '-no-reboot', '-serial', 'stdio'],
  ];
}

/**
 * The kernel: with Xen, QEMU's multiboot loader takes the uncompressed Xen ELF
 * and dom0's kernel and initramfs as modules (dom0 gets 1 GiB, console hvc0);
 * else the plain kernel on ttyS0. guestArgs are the guest's own (nestlab.mode=…).
 */
export function kernelArgs(
  setup: SetupState,
  spec: { xen: boolean; initrd: string; guestArgs: string },
): string[] {
  for (const p of [setup.vmlinuz, spec.initrd]) {
    // QEMU's multiboot -initrd separates modules with commas.
    if (p.includes(','))
      throw new ReferenceError('UNSUPPORTED_SCENARIO', 'input', `path contains a comma: ${p}`);
  }
  if (spec.xen)
    return [
      ...['-kernel', setup.xen],
      ...['-append', 'console=com1 com1=115200,8n1 dom0_mem=1024M,max:1024M'],
      ...['-initrd', `${setup.vmlinuz} console=hvc0 ${spec.guestArgs},${spec.initrd}`],
    ];
  return [
    ...['-kernel', setup.vmlinuz, '-initrd', spec.initrd],
    ...['-append', `console=ttyS0 ${spec.guestArgs}`],
  ];
}

/** Starts the guest's QEMU (its console lines to onConsole as they arrive). */
export function startQemu(
  setup: SetupState,
  args: readonly string[],
  opts: { timeoutMs: number; onConsole?: ((line: string) => void) | undefined },
): QemuProcess {
  return QemuProcess.start({
    binary: setup.qemu,
    args,
    timeoutMs: opts.timeoutMs,
    ...(opts.onConsole ? { onLine: opts.onConsole } : {}),
  });
}
