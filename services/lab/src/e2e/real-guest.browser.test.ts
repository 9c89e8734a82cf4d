// A real-guest run reaches the console: the vhost-user back-end runs as its
// own process (as `nestlab reference --device nestlab` starts it, with the
// OTLP endpoint the CLI picks), a test front-end plays QEMU and a guest
// driver (a write then a read-back of one sector through a real ring in a
// shared RAM file), its spans land in a real console server, the run is saved
// in the run store, and chromium shows the run and the trace of its accesses.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  closeSync,
  ftruncateSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { busAddr, type BusAddr } from '@nestlab/addr';
import {
  FakeFrontEnd,
  REQ,
  concat,
  fifoFd,
  u32s,
  u64s,
} from '@nestlab/l0-hypervisor/vhost-user-testing';
import { QemuProcess, backendMain, readDmaLog, summarizeDma } from '@nestlab/reference';
import { RingImage, type TestMemory } from '@nestlab/virtio/testing';
import { backendOtlp } from '../cli/reference-nestlab.js';
import { buildConsole } from '../console/app.js';
import { realGuestRun, type RealGuestRun, type SavedReport } from '../run/real-guest-run.js';
import { saveRealGuestRun } from '../run/store.js';

const ARTIFACTS = join(new URL('../../../../', import.meta.url).pathname, 'artifacts');
const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
const RAM_BYTES = 1 << 20;
const DISK_BYTES = 1 << 20;
/** Where the pretend QEMU maps guest RAM in its own address space. */
const USER_BASE = 0x7f00_0000_0000n;
const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex');

/** Guest RAM as a file both sides open: the test writes rings and buffers, the back-end DMAs. */
function fileRam(fd: number): TestMemory {
  return {
    write: (addr: BusAddr, bytes: Uint8Array) =>
      void writeSync(fd, bytes, 0, bytes.byteLength, Number(addr)),
    readSync(addr: bigint, len: number) {
      const b = Buffer.alloc(len);
      readSync(fd, b, 0, len, Number(addr));
      return b;
    },
  };
}

/** A virtio-blk request chain: header (type, sector), data, status byte. */
function blkChain(ring: RingImage, at: number, type: 0 | 1, dataLen: number): number {
  ring.mem.write(busAddr(BigInt(at)), concat(u32s(type, 0), u64s(0n)));
  return ring.addChain([
    { addr: BigInt(at), len: 16 },
    { addr: BigInt(at + 0x1000), len: dataLen, writable: type === 0 },
    { addr: BigInt(at + 0x2000), len: 1, writable: true },
  ]);
}

/** Kicks the queue, then waits until the device has used `used` chains in all. */
async function kickAndWait(ring: RingImage, kick: number, used: number): Promise<void> {
  writeSync(kick, u64s(1n));
  for (let i = 0; ring.usedIdx() < used; i++) {
    assert.ok(i < 1000, `used.idx ${ring.usedIdx()} after 10 s, want ${used}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('a real-guest run in the console', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'nestlab-real-guest-'));
  const app = buildConsole();
  let consoleUrl = '';
  let saved: RealGuestRun;
  let browser: Browser;

  before(async () => {
    process.env['NESTLAB_RUNS'] = join(scratch, 'runs');
    consoleUrl = await app.listen({ host: '127.0.0.1', port: 0 });
    const files = {
      socket: join(scratch, 'vhost.sock'),
      disk: join(scratch, 'disk.img'),
      dmaLog: join(scratch, 'dma.jsonl'),
      ram: join(scratch, 'ram'),
    };
    const diskFd = openSync(files.disk, 'w');
    ftruncateSync(diskFd, DISK_BYTES);
    closeSync(diskFd);
    const otlp = backendOtlp(consoleUrl, {}, () => null);
    const backend = QemuProcess.start({
      binary: process.execPath,
      args: [
        backendMain(),
        ...['--socket', files.socket, '--disk', files.disk, '--dma-log', files.dmaLog],
        ...['--disk-bytes', String(DISK_BYTES), '--queue-size', '8', '--iommu', 'none'],
      ],
      timeoutMs: 60_000,
      env: otlp.env,
    });
    assert.ok(await backend.waitForLine(/vhost-user: listening/, 20_000), backend.lines.join('\n'));

    const ram = openSync(files.ram, 'w+');
    ftruncateSync(ram, RAM_BYTES);
    const kick = fifoFd(scratch, 'kick');
    const call = fifoFd(scratch, 'call');
    const fe = await FakeFrontEnd.connect(files.socket);
    const ring = new RingImage(fileRam(ram), {
      size: 8,
      desc: 0x1000n,
      avail: 0x2000n,
      used: 0x3000n,
    });
    const pattern = Buffer.alloc(512);
    for (let i = 0; i < 512; i++) pattern[i] = (i * 7 + 3) & 0xff;
    ring.mem.write(busAddr(0x5000n), pattern);
    blkChain(ring, 0x4000, 1, 512); // write sector 0

    const user = (gpa: bigint) => USER_BASE + gpa;
    fe.send(REQ.SET_OWNER);
    fe.send(REQ.SET_FEATURES, u64s((1n << 32n) | (1n << 30n)));
    fe.send(REQ.SET_MEM_TABLE, concat(u32s(1, 0), u64s(0n, BigInt(RAM_BYTES), USER_BASE, 0n)), [
      ram,
    ]);
    fe.send(REQ.SET_VRING_NUM, u32s(0, 8));
    fe.send(REQ.SET_VRING_BASE, u32s(0, 0));
    fe.send(
      REQ.SET_VRING_ADDR,
      concat(u32s(0, 0), u64s(user(0x1000n), user(0x3000n), user(0x2000n), 0n)),
    );
    fe.send(REQ.SET_VRING_KICK, u64s(0n), [kick]);
    fe.send(REQ.SET_VRING_CALL, u64s(0n), [call]);
    fe.send(REQ.SET_VRING_ENABLE, u32s(0, 1));
    // In flight together, a read may pass a write (as on any virtio-blk
    // device): the read-back goes once the write is used, as a driver's would.
    await kickAndWait(ring, kick, 1);
    blkChain(ring, 0x7000, 0, 512);
    await kickAndWait(ring, kick, 2);
    const status = (at: bigint) => ring.mem.readSync(at, 1)[0];
    const guest = { wrote: status(0x6000n) === 0, read: status(0x9000n) === 0 };
    const back = Buffer.from(ring.mem.readSync(0x8000n, 512));
    const image = Buffer.alloc(512);
    const diskRead = openSync(files.disk, 'r');
    readSync(diskRead, image, 0, 512, 0);
    closeSync(diskRead);

    // The front-end leaves: the back-end exits, flushing its spans to the console.
    fe.close();
    const exit = await backend.exited;
    assert.equal(exit.code, 0, backend.lines.join('\n'));
    for (const fd of [ram, kick, call]) closeSync(fd);

    const report: SavedReport = {
      outcome: 'ok',
      guest: {
        ...guest,
        sumPattern: md5(pattern),
        sumBack: md5(back),
      },
      expectedSum: md5(pattern),
      imageSum: md5(image),
      dma: summarizeDma(readDmaLog(files.dmaLog).records),
      errors: [],
      elapsedMs: 1,
    };
    saved = realGuestRun('kvm-guest-baseline', false, report, otlp.endpoint);
    saveRealGuestRun(saved);

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
    });
  });
  after(async () => {
    await browser?.close();
    await app.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  it("sends the back-end's spans, with the PCI device's span names, to the console", async () => {
    assert.equal(saved.guest.sumBack, saved.expectedSum, 'the read-back matches the write');
    assert.equal(saved.nestlab.imageSum, saved.expectedSum, 'the disk image holds the bytes');
    const n = saved.nestlab;
    assert.ok(n.records > 0 && n.byVerdict['direct'] === n.records, JSON.stringify(n.byVerdict));
    assert.equal(n.bufferBytesRead, 512 + 16 + 16, 'the written sector and both headers');
    assert.equal(n.bufferBytesWritten, 512 + 2, 'the read sector and both status bytes');
    assert.ok(n.traceIds.length > 0, 'the DMA log names the traces of its accesses');
    const names = new Set<string>();
    for (const id of n.traceIds) {
      const res = await fetch(`${consoleUrl}/api/traces/${id}`);
      assert.equal(res.status, 200, `trace ${id} is in the console`);
      const { spans } = (await res.json()) as {
        spans: {
          service: string;
          stack?: string;
          name: string;
          attributes: Record<string, unknown>;
        }[];
      };
      for (const s of spans) {
        assert.equal(s.service, 'l0-vhost-user');
        assert.equal(s.stack, 'reference');
        names.add(s.name);
        if (s.name === 'l0.dma buffer') assert.equal(s.attributes['nestlab.dma.verdict'], 'direct');
      }
      // Each listed trace is one that moved data: it holds a request.
      assert.ok(
        spans.some((s) => s.name === 'l0.device.request'),
        `trace ${id} has a request`,
      );
    }
    for (const name of ['l0.device.notify', 'l0.device.request', 'l0.dma desc', 'l0.dma buffer'])
      assert.ok(names.has(name), `${name} in ${[...names].join(', ')}`);
    const listed = (await (await fetch(`${consoleUrl}/api/real-guest-runs`)).json()) as {
      runs: RealGuestRun[];
    };
    assert.deepEqual(listed.runs, [saved]);
  });

  it('shows the run on the scenarios page and opens the trace of its accesses', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    await page.goto(consoleUrl);
    const row = page.locator('#real-guest-runs tr[data-id="kvm-guest-baseline"]');
    await row.waitFor({ timeout: 10_000 });
    assert.equal(await page.locator('#real-guest-none').isHidden(), true);
    const text = (await row.textContent()) ?? '';
    for (const want of [
      'real guest via vhost-user',
      'PASS ok',
      'read back what it wrote',
      `${saved.nestlab.records} accesses`,
      'every access direct',
      `read ${saved.nestlab.bufferBytesRead} B`,
      `written ${saved.nestlab.bufferBytesWritten} B`,
    ])
      assert.ok(text.includes(want), `${want} in ${text}`);
    await row.locator('a.trace-link').click();
    await page
      .locator('.wf-row[data-service="l0-vhost-user"]')
      .first()
      .waitFor({ timeout: 10_000 });
    // The device sees no pseudo-physical address: the ladder starts at the bus address.
    const ladder = page.locator('.ladder').first();
    assert.equal(await ladder.locator('.addr[data-layer="pseudo_phys"]').count(), 0);
    assert.match(
      (await ladder.locator('.addr[data-layer="bus"]').textContent()) ?? '',
      /^0x[0-9a-f]+$/,
    );
    assert.match(
      (await ladder.locator('.addr[data-layer="host_phys"]').textContent()) ?? '',
      /^0x7f0000[0-9a-f]+$/,
      "host_phys: where the address lands in the front-end's mapping of guest RAM",
    );
    const rows = await page.locator('.wf-name').allTextContents();
    assert.ok(
      rows.some((r) => r.includes('l0-vhost-user · l0.dma')),
      rows.join('\n'),
    );
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({
      path: join(ARTIFACTS, 'console-real-guest-trace.png'),
      fullPage: true,
    });
    await page.goto(consoleUrl + '/#real-guest');
    await page.locator('#real-guest-runs tr[data-id]').waitFor();
    await page.screenshot({ path: join(ARTIFACTS, 'console-real-guest.png'), fullPage: true });
    await page.close();
  });
});
