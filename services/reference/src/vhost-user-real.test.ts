// Slow: the real guest under QEMU TCG with its disk served by nestlab's
// device model over vhost-user (~20-45 s a run, five runs). Runs only
// with NESTLAB_REFERENCE_REAL=1 after `nestlab reference --setup`; .ci/run
// calls it explicitly.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { processesWith } from './processes.js';
import { loadSetup } from './setup-state.js';
import { metricTotals } from './vhost-user-dma.js';
import { runVhostUser } from './vhost-user-run.js';

const enabled = process.env['NESTLAB_REFERENCE_REAL'] === '1';
const skip = enabled
  ? false
  : 'set NESTLAB_REFERENCE_REAL=1 (after `nestlab reference --setup`) to boot the real guest';

/** QEMU or back-end processes whose command line names a vhost-user run's scratch dir. */
const processesOfRuns = (): number[] => processesWith('/runs/vhost-user-');

describe('vhost-user: a real Linux driver drives nestlab’s device (slow)', () => {
  it(
    '4 MiB written with O_DIRECT and read back; the image holds it; every access direct',
    { skip },
    async () => {
      const r = await runVhostUser({ setup: loadSetup() });
      const why = JSON.stringify(r, null, 2);
      assert.equal(r.outcome, 'ok', why);
      assert.ok(r.guest.wrote && r.guest.read, why);
      assert.equal(r.guest.sumPattern, r.expectedSum, 'the guest wrote the known pattern');
      assert.equal(r.guest.sumBack, r.expectedSum, 'the guest read back what it wrote');
      assert.equal(r.imageSum, r.expectedSum, "nestlab's disk image holds the same bytes");
      assert.equal(r.dma.byVerdict['direct'], r.dma.records, 'every access is direct (no vIOMMU)');
      // The device read the 4 MiB the guest wrote, and wrote the 4 MiB it read back, through the log.
      assert.ok(r.dma.bufferBytesRead >= 4 << 20, why);
      assert.ok(r.dma.bufferBytesWritten >= 4 << 20, why);
      for (const what of ['desc', 'avail', 'used', 'buffer']) assert.ok(r.dma.byWhat[what], what);
      // The L0 metrics count the same accesses, and the call eventfd as the MSI.
      const totals = metricTotals(r.metrics);
      assert.equal(totals['dma_accesses'], r.dma.records, JSON.stringify(totals));
      assert.ok(
        (totals['blk_requests'] ?? 0) > 0 && (totals['msi'] ?? 0) > 0,
        JSON.stringify(totals),
      );
      assert.deepEqual(processesOfRuns(), []);
    },
  );

  it(
    'behind the vIOMMU (q35 + intel-iommu, iommu_platform=on): every access translated through the IOTLB',
    { skip },
    async () => {
      const r = await runVhostUser({ setup: loadSetup(), viommu: true });
      const why = JSON.stringify(r, null, 2);
      assert.equal(r.outcome, 'ok', why);
      assert.equal(r.guest.sumBack, r.expectedSum);
      assert.equal(r.imageSum, r.expectedSum);
      assert.equal(r.dma.byVerdict['translated'], r.dma.records, why);
      assert.match(
        r.backendLines.join('\n'),
        /"misses":[1-9]/,
        'misses went to QEMU over the protocol',
      );
      assert.deepEqual(processesOfRuns(), []);
    },
  );

  it(
    'xen-pv-dom0-legacy: the guest hangs; the device read avail.idx at the pseudo-physical number, as machine',
    { skip },
    async () => {
      const r = await runVhostUser({ setup: loadSetup(), scenario: 'xen-pv-dom0-legacy' });
      const why = JSON.stringify({ ...r, backendLines: r.backendLines.slice(-5) }, null, 2);
      assert.equal(r.outcome, 'misdirected-dma', why);
      assert.ok(r.guest.io && r.guest.io.submitted > 0, why);
      assert.equal(r.guest.io.completed, 0, 'no request completed: the guest hangs');
      const { driver, device, availIdx } = r.ring;
      assert.ok(driver?.given && driver.machine && device && availIdx, why);
      assert.notEqual(driver.given, driver.machine, 'dom0 pseudo-physical is not machine');
      assert.equal(device.desc, driver.given, 'QEMU passed on the number the module wrote');
      assert.equal(device.space, 'guest-physical');
      // avail follows 16-byte descriptors; idx is its second u16.
      const at = BigInt(driver.given) + 16n * BigInt(r.ring.queueSize ?? 0) + 2n;
      assert.equal(availIdx.machine, `0x${at.toString(16)}`, 'the address named is where it read');
      assert.ok(availIdx.reads > 0 && availIdx.verdict === 'direct', why);
      assert.ok(r.dom0Machine, "Xen's log names dom0's machine range");
      assert.ok(BigInt(driver.machine) >= BigInt(r.dom0Machine.start), 'the ring is in dom0');
      assert.match(driver.givenOwner ?? '', /^not-dom0/, "Xen's M2P: dom0 does not own that frame");
      assert.match(r.explanation, new RegExp(`avail\\.idx at machine ${availIdx.machine}`));
      assert.deepEqual(processesOfRuns(), []);
    },
  );

  for (const who of ['qemu', 'backend'] as const) {
    it(`killing ${who} mid-run leaves no process behind`, { skip }, async () => {
      const r = await runVhostUser({ setup: loadSetup(), kill: { who, afterDmaRecords: 20 } });
      assert.equal(r.outcome, 'killed', JSON.stringify(r, null, 2));
      assert.equal((who === 'qemu' ? r.qemuExit : r.backendExit)?.signal, 'SIGKILL');
      assert.ok(r.qemuExit && r.backendExit, 'both sides exited');
      assert.deepEqual(processesOfRuns(), []);
    });
  }
});
