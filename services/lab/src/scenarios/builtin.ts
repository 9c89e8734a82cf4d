import { VIRTIO_BLK_F, VIRTIO_F } from '@nestlab/virtio';
import type { Scenario } from './scenario.js';

const GiB = 2 ** 30;
const XEN_STACK = { xen: true, machineBytes: 2 * GiB, dom0Bytes: 1 * GiB } as const;
const BLK_FEATURES = [VIRTIO_BLK_F.SEG_MAX, VIRTIO_BLK_F.BLK_SIZE, VIRTIO_BLK_F.FLUSH];
const RING_FEATURES = [VIRTIO_F.VERSION_1, VIRTIO_F.EVENT_IDX, VIRTIO_F.INDIRECT_DESC];
const ALL_WANTED = [...RING_FEATURES, VIRTIO_F.ACCESS_PLATFORM, ...BLK_FEATURES];
const WORKLOAD = {
  ios: 200,
  iodepth: 8,
  bs: 4096,
  rw: 'randrw',
  verify: true,
  deadlineMs: 2000,
} as const;

/** The seed scenarios implemented so far; ids are fixed (other tools depend on them). */
export const BUILTIN_SCENARIOS: readonly Scenario[] = [
  {
    id: 'xen-pv-dom0-dma-api',
    title: 'Xen PV dom0, driver uses the DMA API (swiotlb-xen)',
    expected: 'ok',
    explanation:
      'Since Linux 4.6 vring_use_dma_api() is true under Xen, so the driver maps every buffer through ' +
      'swiotlb-xen, which turns the pseudo-physical frame into the machine frame via the P2M. The device ' +
      '(emulated by L0, which sees machine memory) then reads and writes exactly the frames the driver meant.',
    stack: XEN_STACK,
    device: {
      offer: [...RING_FEATURES, ...BLK_FEATURES],
      requireAccessPlatform: false,
      iommu: 'none',
      queueSize: 256,
    },
    iommu: { mode: 'off' },
    driver: { generation: 'modern', policy: 'xen-swiotlb', wanted: ALL_WANTED },
    workload: WORKLOAD,
  },
  {
    id: 'xen-pv-dom0-legacy',
    title: 'Xen PV dom0, driver ignores the DMA API (as in 2014)',
    expected: 'misdirected-dma',
    explanation:
      'The 2014 virtio driver wrote guest-physical addresses straight into the ring. In a PV dom0 those are ' +
      'pseudo-physical frame numbers, while QEMU/KVM (L0) sees machine frames: "Xen guest physical addresses ' +
      'aren\'t the same as the addresses seen by the outer hypervisor". The device therefore reads the ring ' +
      "and buffers from whatever machine frames carry those numbers — Xen's or free memory — and the I/O hangs " +
      'or corrupts.',
    stack: XEN_STACK,
    device: {
      offer: [...RING_FEATURES, ...BLK_FEATURES],
      requireAccessPlatform: false,
      iommu: 'none',
      queueSize: 256,
    },
    iommu: { mode: 'off' },
    driver: { generation: 'pre-2016', policy: 'legacy', wanted: ALL_WANTED },
    workload: { ...WORKLOAD, ios: 16, iodepth: 4, deadlineMs: 1000 },
  },
  {
    id: 'viommu-access-platform',
    title: 'vIOMMU on, device offers and driver accepts ACCESS_PLATFORM',
    expected: 'ok',
    explanation:
      'With VIRTIO_F_ACCESS_PLATFORM (bit 33, the standardized form of the proposed "use bus mapping" bit) ' +
      'negotiated, the device accesses memory through the platform IOMMU and the driver must hand it DMA ' +
      "addresses. dom0 maps each buffer through Xen into the device's IOMMU domain; every device access is " +
      'translated IOVA → machine, and nothing outside the mappings is reachable.',
    stack: XEN_STACK,
    device: {
      offer: [...RING_FEATURES, VIRTIO_F.ACCESS_PLATFORM, ...BLK_FEATURES],
      requireAccessPlatform: true,
      iommu: 'virtio',
      queueSize: 256,
    },
    iommu: { mode: 'translate' },
    driver: { generation: 'modern', policy: 'iommu', wanted: ALL_WANTED },
    workload: WORKLOAD,
    checks: { allTranslated: true },
  },
];

export function findScenario(id: string): Scenario | undefined {
  return BUILTIN_SCENARIOS.find((s) => s.id === id);
}
