import type { Counter, MetricsRegistry } from '@nestlab/service-kit';

/** Every metric the L0 service exports, registered once. */
export interface L0Metrics {
  readonly iotlbHits: Counter<'bdf'>;
  readonly iotlbMisses: Counter<'bdf'>;
  /** Device memory accesses (page spans) by verdict and what was touched. */
  readonly dmaAccesses: Counter<'verdict' | 'what'>;
  readonly dmaFaults: Counter<'code'>;
  /** Malformed rings that put a device into NEEDS_RESET, by code. */
  readonly ringErrors: Counter<'code'>;
  readonly blkRequests: Counter<'type' | 'status'>;
  readonly msis: Counter<'vector'>;
  readonly cpuDenied: Counter<'code'>;
  readonly mmioIgnored: Counter<'region'>;
  readonly notifiesDropped: Counter<'reason'>;
}

export function createL0Metrics(m: MetricsRegistry): L0Metrics {
  return {
    iotlbHits: m.counter('nestlab_l0_iotlb_hits_total', 'DMA translations served from the IOTLB', [
      'bdf',
    ]),
    iotlbMisses: m.counter('nestlab_l0_iotlb_misses_total', 'DMA translations asked of the IOMMU', [
      'bdf',
    ]),
    dmaAccesses: m.counter(
      'nestlab_l0_dma_accesses_total',
      'Device memory accesses (4 KiB spans) by verdict and ring part',
      ['verdict', 'what'],
    ),
    dmaFaults: m.counter('nestlab_l0_dma_faults_total', 'Device memory accesses refused, by code', [
      'code',
    ]),
    ringErrors: m.counter(
      'nestlab_l0_ring_errors_total',
      'Malformed rings that put a device into NEEDS_RESET, by code',
      ['code'],
    ),
    blkRequests: m.counter(
      'nestlab_l0_blk_requests_total',
      'virtio-blk requests by type and status',
      ['type', 'status'],
    ),
    msis: m.counter('nestlab_l0_msi_total', 'MSIs raised, by vector', ['vector']),
    cpuDenied: m.counter(
      'nestlab_l0_cpu_access_denied_total',
      'CPU accesses refused (ACCESS_DENIED / MEMORY_UNREACHABLE), by code',
      ['code'],
    ),
    mmioIgnored: m.counter(
      'nestlab_l0_mmio_ignored_total',
      'Register writes ignored (read-only, wrong width or state)',
      ['region'],
    ),
    notifiesDropped: m.counter(
      'nestlab_l0_notifies_dropped_total',
      'Doorbells for a device or queue that cannot run',
      ['reason'],
    ),
  };
}
