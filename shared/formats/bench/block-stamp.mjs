// In-process micro-bench of the block stamp (issue 17): µs per 4 KiB block to
// stamp (blockContent) and to check (isBlockContent), as a job does per I/O.
// Run after a build: node shared/formats/bench/block-stamp.mjs [blocks]
import { blockContent, isBlockContent } from '../dist/index.js';

const n = Number(process.argv[2] ?? 20000);
const bs = 4096;
function time(label, fn) {
  for (let i = 0; i < 2000; i++) fn(i); // warm up
  const t0 = process.cpuUsage();
  for (let i = 0; i < n; i++) fn(i);
  const { user, system } = process.cpuUsage(t0);
  console.log(`${label}: ${((user + system) / n).toFixed(2)} µs CPU per block`);
}
const stamp = (i) => ({ seed: 7, block: i, generation: 1 });
time('blockContent', (i) => blockContent(stamp(i), bs));
const blocks = Array.from({ length: 64 }, (_, i) => blockContent(stamp(i), bs));
let ok = 0;
time('isBlockContent', (i) => (ok += isBlockContent(stamp(i % 64), bs, blocks[i % 64]) ? 1 : 0));
if (ok === 0) throw new Error('no block checked');
