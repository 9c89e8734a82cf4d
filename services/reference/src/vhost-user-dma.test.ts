import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseGuestLines } from './console-parse.js';
import type { SetupState } from './setup-state.js';
import {
  lastVringAddr,
  metricTotals,
  readDmaLog,
  readMetrics,
  ringView,
  summarizeDma,
} from './vhost-user-dma.js';
import { vhostQemuArgs, vhostUserRow, type VhostUserRow } from './vhost-user-rows.js';

const rec = (what: string, bus: string, write = false, len = 2) =>
  JSON.stringify({
    seq: 0,
    bdf: '0000:00:04.0',
    what,
    write,
    bus,
    len,
    machine: bus,
    hostPhys: null,
    verdict: 'direct',
  });

/** The module's lines and the back-end's, as the legacy row under Xen prints them. */
const MODULE_LINES = [
  'NESTLAB ring.pseudo=0x64a0000 ring.machine=0x764a0000 ring.given=0x64a0000 ring.bytes=5126 queue.size=128',
  'NESTLAB ring.given.owner=not-dom0 ring.given.owner_pfn=0xffffffffffffffff',
  'NESTLAB io=done submitted=4 completed=0 verified=0 corrupted=0 failed=4',
];
const BACKEND_LINES = [
  // SeaBIOS reads the boot sector through the device first, with a ring of its own.
  'vhost-user: vring 0 addr desc 0x7ffdd000 avail 0x7ffdd800 used 0x7ffde000 (guest-physical)',
  'vhost-user: vring 0 addr desc 0x64a0000 avail 0x64a0800 used 0x64a1000 (guest-physical)',
];

/** A scratch file with these lines (a DMA log, a metrics file). */
function withLog(lines: string[], fn: (path: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'nestlab-dma-log-'));
  try {
    const path = join(dir, 'dma.jsonl');
    writeFileSync(path, lines.join('\n') + '\n');
    fn(path);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("nestlab's view of a vhost-user run", () => {
  it('reads the DMA log, naming lines that are not DmaRecords instead of failing', () => {
    const bad = ['{"seq":1}', 'not json', rec('avail', 'zz'), '{}', '[]'];
    withLog([rec('avail', '0x7ffdd802'), ...bad, rec('buffer', '0x1000', true, 512)], (path) => {
      const log = readDmaLog(path);
      assert.equal(log.records.length, 2);
      assert.equal(log.errors.length, 4, 'three named, the rest counted');
      assert.match(log.errors[0] ?? '', /^DMA log line 2: /);
      assert.equal(log.errors[3], '2 more bad DMA log lines');
      const s = summarizeDma(log.records);
      assert.deepEqual(s.byWhat, { avail: 1, buffer: 1 });
      assert.equal(s.bufferBytesWritten, 512);
    });
    assert.deepEqual(readDmaLog('/nonexistent/dma.jsonl'), { records: [], errors: [] });
  });

  it('names where the device read avail.idx for the last ring QEMU set, beside the driver’s', () => {
    withLog(
      [rec('avail', '0x7ffdd802'), rec('avail', '0x64a0802'), rec('avail', '0x64a0802')],
      (path) => {
        const v = ringView(
          parseGuestLines(MODULE_LINES),
          BACKEND_LINES,
          readDmaLog(path).records,
          64,
        );
        assert.equal(v.queueSize, 128, 'the module’s queue size wins over the default');
        assert.deepEqual(v.device, {
          desc: '0x64a0000',
          avail: '0x64a0800',
          used: '0x64a1000',
          space: 'guest-physical',
        });
        assert.deepEqual(v.availIdx, {
          bus: '0x64a0802',
          machine: '0x64a0802',
          verdict: 'direct',
          reads: 2,
        });
        assert.equal(v.driver?.given, '0x64a0000');
        assert.equal(v.driver.givenOwner, 'not-dom0');
        assert.equal(v.driverAvailIdx, '0x764a0802');
      },
    );
  });

  it('with the stock driver: no module view, and no avail.idx read when the log has none', () => {
    const v = ringView(parseGuestLines([]), BACKEND_LINES.slice(0, 1), [], 128);
    assert.equal(v.driver, null);
    assert.equal(v.driverAvailIdx, null);
    assert.equal(v.availIdx, null);
    assert.equal(v.device?.desc, '0x7ffdd000');
    assert.equal(lastVringAddr(['vhost-user: listening on /x']), null);
  });

  it("reads the back-end's L0 metrics file: series without the stack label, totals by name", () => {
    const text = [
      '# HELP nestlab_l0_blk_requests_total virtio-blk requests by type and status',
      '# TYPE nestlab_l0_blk_requests_total counter',
      'nestlab_l0_blk_requests_total{type="out",status="0",stack="reference"} 1024',
      'nestlab_l0_blk_requests_total{type="in",status="0",stack="reference"} 1025',
      'nestlab_l0_msi_total{vector="call-0",stack="reference"} 2049',
      'nestlab_l0_dma_faults_total{stack="reference"} 0',
      'process_cpu_seconds_total 3',
    ];
    withLog(text, (path) => {
      const series = readMetrics(path);
      assert.deepEqual(series, {
        'nestlab_l0_blk_requests_total{type="out",status="0"}': 1024,
        'nestlab_l0_blk_requests_total{type="in",status="0"}': 1025,
        'nestlab_l0_msi_total{vector="call-0"}': 2049,
        nestlab_l0_dma_faults_total: 0,
      });
      assert.deepEqual(metricTotals(series), { blk_requests: 2049, msi: 2049 });
    });
    assert.deepEqual(readMetrics('/nonexistent/metrics.prom'), {});
  });

  it('the Xen rows boot Xen with a shared memfd as its machine memory', () => {
    const setup = {
      vmlinuz: '/boot/vmlinuz',
      xen: '/cache/xen.elf',
      qemu: 'qemu-system-x86_64',
    } as SetupState;
    const files = { initrd: '/w/i.gz', socket: '/w/v.sock' };
    const after = (args: string[], flag: string) =>
      args.flatMap((a, i) => (a === flag ? [args[i + 1] ?? ''] : []));
    const legacy = vhostQemuArgs(setup, vhostUserRow('xen-pv-dom0-legacy') as VhostUserRow, files);
    assert.deepEqual(after(legacy, '-kernel'), ['/cache/xen.elf']);
    assert.deepEqual(after(legacy, '-object'), ['memory-backend-memfd,id=mem,size=2048M,share=on']);
    assert.deepEqual(after(legacy, '-device'), [
      'vhost-user-blk-pci,chardev=vu,num-queues=1,queue-size=128,disable-modern=on',
    ]);
    assert.match(after(legacy, '-initrd')[0] ?? '', /nestlab\.mode=module-pseudo .*,\/w\/i\.gz$/);
    const dmaApi = vhostQemuArgs(setup, vhostUserRow('xen-pv-dom0-dma-api') as VhostUserRow, files);
    assert.match(after(dmaApi, '-initrd')[0] ?? '', /nestlab\.mode=pattern/);
    assert.deepEqual(after(dmaApi, '-cpu'), ['max,-smap']);
    assert.equal(vhostUserRow('xen-pv-dom0-half-fix'), null);
  });
});
