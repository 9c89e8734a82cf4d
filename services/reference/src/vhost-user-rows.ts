// The scenarios `nestlab reference --device nestlab` can run with the guest's
// virtio-blk served by nestlab over vhost-user, and their QEMU command lines.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { kernelArgs, machineArgs } from './qemu-launch.js';
import type { SetupState } from './setup-state.js';

export const QUEUE_SIZE = 128;

export interface VhostUserRow {
  scenario: string;
  /** One line: the stack this row boots. */
  summary: string;
  xen: boolean;
  /** QEMU's vIOMMU in front (q35 + intel-iommu, iommu_platform=on). */
  viommu: boolean;
  /** Legacy-only virtio-pci (disable-modern=on): the transport the reference module's 2014 driver uses. */
  legacyDevice: boolean;
  /** The 4 MiB pattern with the stock virtio_blk, or the reference module writing virt_to_phys(). */
  guest: 'pattern' | 'module-pseudo';
  /** What the row shows when it behaves as on the real stack. */
  expect: 'ok' | 'misdirected-dma';
}

const ROWS: readonly VhostUserRow[] = [
  {
    scenario: 'kvm-guest-baseline',
    summary: 'plain Linux 6.1 guest (QEMU TCG, pc), stock virtio_blk',
    xen: false,
    viommu: false,
    legacyDevice: false,
    guest: 'pattern',
    expect: 'ok',
  },
  {
    scenario: 'viommu-access-platform',
    summary:
      'plain Linux 6.1 guest (QEMU TCG, q35 + intel-iommu), iommu_platform=on, stock virtio_blk',
    xen: false,
    viommu: true,
    legacyDevice: false,
    guest: 'pattern',
    expect: 'ok',
  },
  {
    scenario: 'xen-pv-dom0-dma-api',
    summary:
      'Xen 4.17 + Linux 6.1 PV dom0 (QEMU TCG, pc), stock virtio_blk (DMA API via swiotlb-xen)',
    xen: true,
    viommu: false,
    legacyDevice: false,
    guest: 'pattern',
    expect: 'ok',
  },
  {
    scenario: 'xen-pv-dom0-legacy',
    summary:
      'Xen 4.17 + Linux 6.1 PV dom0 (QEMU TCG, pc), legacy virtio-pci, nestlab_vblk writing virt_to_phys()',
    xen: true,
    viommu: false,
    legacyDevice: true,
    guest: 'module-pseudo',
    expect: 'misdirected-dma',
  },
];

export const VHOST_USER_IDS: readonly string[] = ROWS.map((r) => r.scenario);

export function vhostUserRow(id: string): VhostUserRow | null {
  return ROWS.find((r) => r.scenario === id) ?? null;
}

/** The vhost-user back-end's entry point in the l0-hypervisor package. */
export function backendMain(): string {
  const index = createRequire(import.meta.url).resolve('@nestlab/l0-hypervisor');
  return join(dirname(index), 'vhost-user', 'main.js');
}

export function vhostQemuArgs(
  setup: SetupState,
  row: VhostUserRow,
  files: { initrd: string; socket: string },
): string[] {
  const device = [
    'vhost-user-blk-pci,chardev=vu,num-queues=1',
    `queue-size=${QUEUE_SIZE}`,
    ...(row.legacyDevice ? ['disable-modern=on'] : []),
    // Behind a PCIe root port the device is a PCIe endpoint with ATS, so the
    // guest sends device-IOTLB invalidations: the only unmaps QEMU 7.2's vhost
    // passes on to a back-end (as VHOST_USER_IOTLB_MSG INVALIDATE).
    ...(row.viommu ? ['bus=rp0', 'disable-legacy=on', 'iommu_platform=on', 'ats=on'] : []),
  ].join(',');
  const guestArgs = [
    'quiet',
    `nestlab.mode=${row.guest}`,
    // The module's default: two writes, two reads; the first one already hangs.
    ...(row.guest === 'module-pseudo' ? ['nestlab.ios=4'] : []),
    ...(row.viommu ? ['intel_iommu=on'] : []),
  ].join(' ');
  return [
    ...machineArgs({
      xen: row.xen,
      machine: row.viommu ? 'q35' : 'pc',
      // Xen's machine memory: 2 GiB, of which dom0 gets 1 GiB.
      memMiB: row.xen ? 2048 : 512,
      sharedRam: true,
    }),
    // The vIOMMU must exist before the devices it translates for.
    ...(row.viommu ? ['-device', 'intel-iommu,intremap=on,device-iotlb=on'] : []),
    ...(row.viommu ? ['-device', 'pcie-root-port,id=rp0,bus=pcie.0,chassis=1,slot=1'] : []),
    ...['-chardev', `socket,id=vu,path=${files.socket}`],
    ...['-device', device],
    ...kernelArgs(setup, { xen: row.xen, initrd: files.initrd, guestArgs }),
  ];
}
