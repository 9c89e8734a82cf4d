// In-process micro-bench of DiskBackend.read (issue 17): µs CPU per 4 KiB read
// of a block the write cache holds, as a read-after-write job makes.
// Run after a build: node services/l0-hypervisor/bench/disk-read.mjs [reads]
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DiskBackend } from '../dist/blk/disk-backend.js';

const n = Number(process.argv[2] ?? 50000);
const dir = await mkdtemp(join(tmpdir(), 'nestlab-bench-disk-'));
const disk = await DiskBackend.open(join(dir, 'd.img'), 1 << 20, true);
for (let b = 0; b < 64; b++) await disk.write(b * 4096, new Uint8Array(4096).fill(b + 1));
for (let i = 0; i < 2000; i++) await disk.read((i % 64) * 4096, 4096);
const t0 = process.cpuUsage();
for (let i = 0; i < n; i++) await disk.read((i % 64) * 4096, 4096);
const { user, system } = process.cpuUsage(t0);
console.log(`cached read: ${((user + system) / n).toFixed(2)} µs CPU per 4 KiB read`);
await disk.closeWithoutWriteBack();
await rm(dir, { recursive: true, force: true });
