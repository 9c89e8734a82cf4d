import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DIR, FILE, gzipCpio } from './cpio.js';
import { ReferenceError } from './errors.js';
import { GUEST_DIR, type SetupState } from './setup-state.js';

/** Debian 6.1 ships these as modules; /init loads them in dependency order. */
const STOCK_MODULES = [
  'drivers/virtio/virtio_ring.ko',
  'drivers/virtio/virtio.ko',
  'drivers/virtio/virtio_pci_modern_dev.ko',
  'drivers/virtio/virtio_pci_legacy_dev.ko',
  'drivers/virtio/virtio_pci.ko',
  'drivers/virtio/virtio_mmio.ko',
  'drivers/block/virtio_blk.ko',
];

/** Builds the guest's initramfs (busybox, /init, the virtio modules, nestlab_vblk.ko) into dir. */
export function buildInitramfs(setup: SetupState, dir: string): string {
  try {
    const mods = STOCK_MODULES.map((m) => {
      const name = m.slice(m.lastIndexOf('/') + 1);
      return FILE(`lib/modules/${name}`, readFileSync(join(setup.modulesDir, 'kernel', m)));
    });
    const image = gzipCpio([
      ...['bin', 'dev', 'proc', 'sys', 'tmp', 'lib', 'lib/modules'].map((d) => DIR(d)),
      FILE('bin/busybox', readFileSync(setup.busybox), 0o755),
      FILE('init', readFileSync(join(GUEST_DIR, 'init')), 0o755),
      ...mods,
      FILE('lib/modules/nestlab_vblk.ko', readFileSync(setup.module)),
    ]);
    mkdirSync(dir, { recursive: true });
    const out = join(dir, 'initramfs.cpio.gz');
    writeFileSync(out, image);
    return out;
  } catch (cause) {
    throw new ReferenceError(
      'INITRAMFS_FAILED',
      'environment',
      `cannot build the initramfs: ${(cause as Error).message} (run \`nestlab reference --setup\`)`,
      { cause },
    );
  }
}
