/**
 * Each seed scenario as a real configuration: which machine QEMU emulates,
 * whether Xen boots first, which virtio-blk device, which driver in the
 * guest. Facts behind the choices are in the package README.
 */
export type GuestMode =
  | 'stock'
  | 'module-pseudo'
  | 'module-machine'
  | 'module-v1-only'
  | 'module-v1-phys'
  | 'module-proposal-2014'
  | 'module-half-fix';

export interface RealConfig {
  scenario: string;
  /** One line: the real stack this run boots. */
  summary: string;
  xen: boolean;
  /** microvm: the only x86 machine with virtio-mmio transports (plain Linux only, see PLAIN_MMIO). */
  machine: 'pc' | 'q35' | 'microvm';
  viommu: boolean;
  /** Extra -machine properties, e.g. a bus the IOMMU does not translate. */
  machineProps?: string;
  /** -device arguments put before the virtio device: the buses it sits on. */
  buses?: string[];
  /** -device virtio-blk-pci properties after drive/id. */
  device: string;
  mode: GuestMode;
  /** Extra dom0/guest kernel arguments. */
  kernelArgs: string[];
  /** Requests the guest issues (half writes, half reads back). */
  ios: number;
  /** Fields not compared with the emulation, each with why the real stack differs by design. */
  notCompared: Record<string, string>;
}

export interface Unsupported {
  scenario: string;
  unsupported: string;
}

const NO_VERSION_1 =
  'the real pre-2016 driver runs on the legacy transport (no VERSION_1); the emulation offers the modern one';

/** The device behind the IOMMU's back: ACCESS_PLATFORM offered, so QEMU would translate it. */
const EXEMPTION_DEVICE = 'disable-legacy=on,iommu_platform=on';

const EXEMPTION_MISPLACED: RealConfig = {
  scenario: 'x86-virtio-exemption-misplaced',
  summary:
    'plain Linux 6.1 guest on QEMU (TCG, q35 + intel-iommu, root bus exempt from it), virtio-blk put on a translated pxb-pcie bus, nestlab_vblk writing physical addresses',
  xen: false,
  machine: 'q35',
  // The per-bus exemption: the root bus bypasses intel-iommu, an extra host bridge does not.
  machineProps: 'default-bus-bypass-iommu=on',
  buses: [
    'pxb-pcie,id=pxb1,bus_nr=32,bypass_iommu=off',
    'pcie-root-port,id=rp1,bus=pxb1,chassis=1',
  ],
  viommu: true,
  device: `bus=rp1,${EXEMPTION_DEVICE}`,
  mode: 'module-v1-phys',
  kernelArgs: ['intel_iommu=on'],
  ios: 4,
  notCompared: {
    'features.accessPlatform':
      'QEMU translates a virtio device only with iommu_platform=on and then refuses a driver that does not accept ACCESS_PLATFORM; the real old driver accepts the bit and still writes physical addresses',
  },
};

const CONFIGS: readonly RealConfig[] = [
  {
    scenario: 'kvm-guest-baseline',
    summary:
      'plain Linux 6.1 guest on QEMU (TCG, pc), legacy virtio-blk, nestlab_vblk with physical addresses',
    xen: false,
    machine: 'pc',
    viommu: false,
    device: 'disable-modern=on',
    mode: 'module-pseudo',
    kernelArgs: [],
    ios: 8,
    notCompared: { 'features.version1': NO_VERSION_1 },
  },
  {
    scenario: 'xen-pv-dom0-dma-api',
    summary:
      'Xen 4.17 + Linux 6.1 PV dom0 on QEMU (TCG, pc), stock virtio_blk (DMA API via swiotlb-xen)',
    xen: true,
    machine: 'pc',
    viommu: false,
    device: '',
    mode: 'stock',
    kernelArgs: [],
    ios: 16,
    notCompared: {},
  },
  {
    scenario: 'xen-pv-dom0-legacy',
    summary:
      'Xen 4.17 + Linux 6.1 PV dom0 on QEMU (TCG, pc), legacy virtio-blk, nestlab_vblk writing virt_to_phys()',
    xen: true,
    machine: 'pc',
    viommu: false,
    device: 'disable-modern=on',
    mode: 'module-pseudo',
    kernelArgs: [],
    ios: 4,
    notCompared: { 'features.version1': NO_VERSION_1 },
  },
  {
    scenario: 'viommu-access-platform',
    summary:
      'plain Linux 6.1 guest on QEMU (TCG, q35 + intel-iommu), virtio-blk iommu_platform=on, stock driver',
    xen: false,
    machine: 'q35',
    viommu: true,
    device: 'disable-legacy=on,iommu_platform=on',
    mode: 'stock',
    kernelArgs: ['intel_iommu=on'],
    ios: 16,
    notCompared: {
      stack:
        'the real run has no Xen: Xen 4.17 under TCG with a vIOMMU is not part of this setup; the IOMMU path is the same',
    },
  },
  {
    scenario: 'viommu-legacy-bypass',
    summary:
      'plain Linux 6.1 guest on QEMU (TCG, q35 + intel-iommu), virtio-blk without iommu_platform, stock driver',
    xen: false,
    machine: 'q35',
    viommu: true,
    device: '',
    mode: 'stock',
    kernelArgs: ['intel_iommu=on'],
    ios: 16,
    notCompared: {
      rogue:
        'the real run cannot make QEMU issue an access outside every mapping; it shows the bypass by zero translations',
    },
  },
  {
    scenario: 'old-driver-rejects-feature',
    summary:
      'plain Linux 6.1 guest on QEMU (TCG, pc), modern virtio-blk iommu_platform=on, nestlab_vblk accepting only VERSION_1',
    xen: false,
    machine: 'pc',
    viommu: false,
    device: 'disable-legacy=on,iommu_platform=on',
    mode: 'module-v1-only',
    kernelArgs: [],
    ios: 4,
    notCompared: {},
  },
  {
    scenario: 'physical-virtio-card',
    summary:
      'plain Linux 6.1 guest on QEMU (TCG, q35 + intel-iommu), virtio-blk iommu_platform=on, nestlab_vblk writing physical addresses',
    xen: false,
    machine: 'q35',
    viommu: true,
    device: 'disable-legacy=on,iommu_platform=on',
    mode: 'module-v1-phys',
    kernelArgs: ['intel_iommu=on'],
    ios: 4,
    notCompared: {
      'features.accessPlatform':
        'QEMU puts a device behind the vIOMMU only with iommu_platform=on, and then refuses a VERSION_1 driver that does not accept ACCESS_PLATFORM; so the real old driver accepts the bit and still writes physical addresses',
    },
  },
  EXEMPTION_MISPLACED,
  {
    scenario: 'bit25-qemu-device-under-xen',
    summary:
      'Xen 4.17 + Linux 6.1 PV dom0 on QEMU (TCG, pc), modern virtio-blk (offers no bit 25), nestlab_vblk as the 2014 proposal driver',
    xen: true,
    machine: 'pc',
    viommu: false,
    device: 'disable-legacy=on',
    mode: 'module-proposal-2014',
    kernelArgs: [],
    ios: 4,
    notCompared: {},
  },
  {
    scenario: 'xen-pv-dom0-half-fix',
    summary:
      'Xen 4.17 + Linux 6.1 PV dom0 on QEMU (TCG, pc), legacy virtio-blk, nestlab_vblk with the ring from the DMA API and buffers at virt_to_phys()',
    xen: true,
    machine: 'pc',
    viommu: false,
    device: 'disable-modern=on',
    mode: 'module-half-fix',
    kernelArgs: [],
    ios: 4,
    notCompared: { 'features.version1': NO_VERSION_1 },
  },
];

const NO_XEN_ON_MICROVM =
  "QEMU 7.2 gives an x86 guest virtio-mmio only on the microvm machine (pc/q35 take no virtio-mmio transport), and Xen 4.17 panics there at boot: 'Unable to find usable platform timer' (microvm has no HPET or ACPI PM timer, TCG no invariant TSC)";
const NO_BIT_25 =
  'needs a device that offers bit 25 (VIRTIO_F_USE_BUS_MAPPING): it was only proposed in 2014 and never entered the virtio spec, so neither QEMU 7.2 nor any real card offers it';
const NO_RINGS_IN_BAR =
  "needs a device that holds its rings in its own BAR: QEMU 7.2's virtio-blk has no such memory, its rings are always DMA into guest memory";

const UNSUPPORTED: readonly Unsupported[] = [
  { scenario: 'xen-pv-dom0-mmio-legacy', unsupported: NO_XEN_ON_MICROVM },
  { scenario: 'xen-pv-dom0-mmio-dma-api', unsupported: NO_XEN_ON_MICROVM },
  { scenario: 'bit25-physical-card', unsupported: NO_BIT_25 },
  { scenario: 'bit25-card-old-driver', unsupported: NO_BIT_25 },
  { scenario: 'physical-card-rings-in-bar', unsupported: NO_RINGS_IN_BAR },
  { scenario: 'physical-card-rings-in-bar-access-platform', unsupported: NO_RINGS_IN_BAR },
  {
    scenario: 'ppc64-virtio-bypass',
    unsupported:
      'needs a ppc64 (pseries) guest with a platform IOMMU: qemu-system-ppc64 and a ppc64el kernel are not part of this x86-64 setup, and TCG-emulating one is out of the 10-minute budget',
  },
];

/**
 * Not a scenario: plain Linux 6.1 on microvm with the stock virtio_mmio driver
 * (found through ACPI's LNRO0005 entries), showing the transport itself works
 * on the real stack even though Xen cannot boot there. microvm has no HPET or
 * ACPI PM timer and its PIT cannot calibrate the TSC under TCG, so the kernel
 * is told the TSC rate.
 */
export const PLAIN_MMIO: RealConfig = {
  scenario: 'virtio-mmio-plain-linux',
  summary:
    'plain Linux 6.1 guest on QEMU (TCG, microvm), legacy virtio-mmio virtio-blk, stock virtio_mmio + virtio_blk',
  xen: false,
  machine: 'microvm',
  viommu: false,
  device: '',
  mode: 'stock',
  kernelArgs: ['tsc_early_khz=2000000', 'lpj=4000000', 'no_timer_check'],
  ios: 16,
  notCompared: {},
};

/**
 * Not a scenario: the misplaced exemption's control. The same machine, bridge
 * and device, but the device on the exempt root bus (0000:00): QEMU bypasses
 * intel-iommu for it, so the same old driver's physical addresses reach memory
 * and the I/O works with no translation and no fault (`isolation-bypass`).
 */
export const EXEMPTION_CONTROL: RealConfig = {
  ...EXEMPTION_MISPLACED,
  scenario: 'x86-virtio-exemption-control',
  summary:
    'plain Linux 6.1 guest on QEMU (TCG, q35 + intel-iommu, root bus exempt from it), virtio-blk on the exempt root bus, nestlab_vblk writing physical addresses',
  // Named: left out, QEMU would plug the device into the last bus created, the pxb.
  device: `bus=pcie.0,${EXEMPTION_DEVICE}`,
};

export function realConfig(id: string): RealConfig | Unsupported | null {
  return (
    CONFIGS.find((c) => c.scenario === id) ?? UNSUPPORTED.find((u) => u.scenario === id) ?? null
  );
}

export const SUPPORTED_IDS: readonly string[] = CONFIGS.map((c) => c.scenario);
export const UNSUPPORTED_IDS: readonly string[] = UNSUPPORTED.map((u) => u.scenario);

export function isUnsupported(c: RealConfig | Unsupported): c is Unsupported {
  return 'unsupported' in c;
}
