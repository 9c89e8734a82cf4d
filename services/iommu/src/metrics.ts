import type { MetricsRegistry } from '@nestlab/service-kit';

export function iommuMetrics(reg: MetricsRegistry) {
  return {
    translations: reg.counter(
      'nestlab_iommu_translations_total',
      'Translations, by mode and result',
      ['mode', 'result'],
    ),
    faults: reg.counter('nestlab_iommu_faults_total', 'Faults recorded, by reason', ['reason']),
    // A gauge of its own stem: `mapped_pages_total` counts map operations' pages.
    presentPages: reg.gauge(
      'nestlab_iommu_present_pages',
      'Pages mapped now, over all device domains',
    ),
    maps: reg.counter('nestlab_iommu_mapped_pages_total', 'Pages mapped'),
    unmaps: reg.counter('nestlab_iommu_unmapped_pages_total', 'Pages unmapped'),
    unmapAbsent: reg.counter(
      'nestlab_iommu_unmap_absent_pages_total',
      'Unmap of a page that was not mapped',
    ),
    invalidations: reg.counter(
      'nestlab_iommu_iotlb_invalidations_total',
      'IOTLB invalidations published',
    ),
    primes: reg.counter(
      'nestlab_iommu_iotlb_primes_total',
      'IOTLB primes published (new mappings the DMA engine may cache)',
    ),
  };
}
