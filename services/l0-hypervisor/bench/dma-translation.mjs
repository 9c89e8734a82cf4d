// In-process micro-bench of the DMA engine's bus -> machine step (issue 17):
// ns CPU per access for a device with no IOMMU (the dma-api rows), as the
// engine makes one per page span. Run after a build:
// node services/l0-hypervisor/bench/dma-translation.mjs [accesses]
import { busAddr } from '@nestlab/addr';
import { DmaTranslation } from '../dist/dma/dma-translation.js';

const n = Number(process.argv[2] ?? 2_000_000);
const dev = { bdf: '0000:00:04.0', iommu: 'none', accessPlatform: () => false };
const t = new DmaTranslation(/* no IOTLB asked for a device without IOMMU */ null, async () => {
  throw new Error('no IOMMU round trip expected');
});
let sink = 0;
const run = (count) => {
  for (let i = 0; i < count; i++) {
    const m = t.local(dev, busAddr(0x10000n + BigInt((i & 0xffff) << 12)), (i & 1) === 0);
    sink += m.verdict.length;
  }
};
run(100_000);
const t0 = process.cpuUsage();
run(n);
const { user, system } = process.cpuUsage(t0);
console.log(
  `bus -> machine: ${(((user + system) * 1000) / n).toFixed(0)} ns CPU per access (${sink > 0})`,
);
