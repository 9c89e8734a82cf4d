// In-process micro-bench of the split-ring byte codecs (issue 17): ns per call of
// each encoder/decoder the device and driver run per descriptor, used element
// and index. Run after a build: node shared/virtio/bench/ring-codecs.mjs [calls]
import {
  decodeBlkHeader,
  decodeDesc,
  decodeU16,
  decodeUsedElem,
  encodeBlkHeader,
  encodeDesc,
  encodeU16,
  encodeUsedElem,
} from '../dist/index.js';

const n = Number(process.argv[2] ?? 2_000_000);
let sink = 0;
function time(label, fn) {
  for (let i = 0; i < 100_000; i++) fn(i); // warm up
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn(i);
  const ns = Number(process.hrtime.bigint() - t0) / n;
  console.log(`${label}: ${ns.toFixed(1)} ns per call`);
}

const table = new Uint8Array(16 * 256);
for (let i = 0; i < 256; i++) {
  table.set(
    encodeDesc({ addr: BigInt(i) * 0x1_0000_1000n, len: 4096, flags: 3, next: i + 1 }),
    16 * i,
  );
}
const used = encodeUsedElem({ id: 5, len: 4096 });
const hdr = encodeBlkHeader({ type: 1, reserved: 0, sector: 123456789n });
time(
  'encodeDesc',
  (i) =>
    (sink += encodeDesc({
      addr: 0x12345000n + BigInt(i & 0xff),
      len: 4096,
      flags: 1,
      next: i & 0xff,
    }).length),
);
time('decodeDesc', (i) => (sink += decodeDesc(table, 16 * (i & 0xff)).len));
time('encodeUsedElem', (i) => (sink += encodeUsedElem({ id: i & 0xff, len: 4096 }).length));
time('decodeUsedElem', () => (sink += decodeUsedElem(used).len));
time('encodeU16', (i) => (sink += encodeU16(i & 0xffff).length));
time('decodeU16', (i) => (sink += decodeU16(table, 2 * (i & 0x7ff))));
time(
  'encodeBlkHeader',
  (i) => (sink += encodeBlkHeader({ type: 1, reserved: 0, sector: BigInt(i) }).length),
);
time('decodeBlkHeader', () => (sink += decodeBlkHeader(hdr).ok ? 1 : 0));
if (sink === 0) throw new Error('nothing measured');
