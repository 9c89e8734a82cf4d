// In-process micro-bench of the IOTLB and the hex it meets per I/O (issue 17):
// ns CPU per lookup hit, per primed page (an IotlbPrime range as it arrives),
// per translate reply decoded with a full prefetch run, and per range of
// Xen's iova check-and-re-encode. Run after a build:
// node services/l0-hypervisor/bench/iotlb.mjs [iterations]
import { busAddr, parseHex, toHex } from '@nestlab/addr';
import { MetricsRegistry } from '@nestlab/service-kit';
import { Iotlb } from '../dist/dma/iotlb.js';
import { primedEntries } from '../dist/dma/iotlb-prime.js';

const n = Number(process.argv[2] ?? 1_000_000);
const reg = new MetricsRegistry();
const t = new Iotlb(reg.counter('h', 'h', ['bdf']), reg.counter('m', 'm', ['bdf']));
const bdf = '0000:00:04.0';
let sink = 0;

const measure = (label, perIter, count, body) => {
  body(Math.min(count, 50_000));
  const t0 = process.cpuUsage();
  body(count);
  const { user, system } = process.cpuUsage(t0);
  const ns = ((user + system) * 1000) / (count * perIter);
  console.log(`${label}: ${ns.toFixed(0)} ns CPU`);
};

const run = Array.from({ length: 64 }, (_, i) => ({
  machinePage: BigInt(0x8000 + i) << 12n,
  read: true,
  write: true,
  by: 'iommu',
}));
t.insertRun(bdf, 0x10_0000n, run, t.generation);
measure('lookup hit, per access', 1, n, (c) => {
  for (let i = 0; i < c; i++) {
    const e = t.lookup(bdf, busAddr(0x10_0000n + BigInt((i & 63) << 12) + 0x10n), true);
    sink += e ? 1 : 0;
  }
});

const range = {
  iova: '0x4000000',
  mfns: run.map((_, i) => 0x9000 + i).slice(0, 16),
  read: true,
  write: true,
};
measure('prime (16-page range), per page', 16, n / 16, (c) => {
  for (let i = 0; i < c; i++) {
    t.invalidate(bdf, 0x400_0000n, 16);
    sink += t.prime(bdf, parseHex('bus', range.iova), primedEntries(range));
  }
});

const reply = {
  machine: '0x8000010',
  read: true,
  write: true,
  by: 'iommu',
  following: run.map((p) => ({ machinePage: toHex(p.machinePage), read: true, write: true })),
};
measure('translate reply decode (64 following), per page', 65, n / 65, (c) => {
  for (let i = 0; i < c; i++) {
    const following = reply.following.map((f) => ({
      ...f,
      machinePage: parseHex('machine', f.machinePage),
    }));
    sink += following.length + Number(parseHex('machine', reply.machine) & 1n);
  }
});

measure('xen iova parse + re-encode, per range', 1, n, (c) => {
  for (let i = 0; i < c; i++) sink += toHex(parseHex('bus', range.iova)).length;
});
console.log(`(${sink > 0})`);
