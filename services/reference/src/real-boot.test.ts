// Slow: boots the real stack (Xen 4.17 + Linux 6.1 PV dom0 under QEMU TCG), ~70 s.
// Runs only with NESTLAB_REFERENCE_REAL=1 after `nestlab reference --setup`;
// .ci/run calls it explicitly. The issue-16 rows' boots (another ~50 s each)
// run only with NESTLAB_REFERENCE_REAL_ROWS=1 as well, outside CI's budget.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EXEMPTION_CONTROL, PLAIN_MMIO, realConfig, type RealConfig } from './configs.js';
import { runReal } from './run-real.js';
import { processesWith } from './processes.js';
import { loadSetup } from './setup-state.js';

const enabled = process.env['NESTLAB_REFERENCE_REAL'] === '1';
const skip = enabled
  ? false
  : 'set NESTLAB_REFERENCE_REAL=1 (after `nestlab reference --setup`) to boot the real stack';
const skipRows =
  skip ||
  (process.env['NESTLAB_REFERENCE_REAL_ROWS'] === '1'
    ? false
    : "set NESTLAB_REFERENCE_REAL_ROWS=1 too to boot issue 16's rows");

function cfg(id: string): RealConfig {
  const c = realConfig(id);
  assert.ok(c && !('unsupported' in c));
  return c;
}

/** QEMU processes whose command line names this run's scratch dir. */
const qemusUnder = (dir: string): number[] => processesWith('qemu-system', dir);

describe('real stack (slow)', () => {
  it(
    'xen-pv-dom0-legacy: the device reads the ring from the pseudo-physical address',
    { skip },
    async () => {
      const setup = loadSetup();
      const r = await runReal(cfg('xen-pv-dom0-legacy'), { setup });
      assert.equal(r.outcome, 'misdirected-dma', JSON.stringify(r, null, 2));
      assert.equal(r.ios.completed, 0);
      assert.ok(r.ring.given && r.ring.driverMachine && r.ring.given !== r.ring.driverMachine);
      assert.equal(
        r.device.desc,
        r.ring.given,
        'QEMU uses the address the driver wrote, as machine',
      );
      assert.ok(r.dom0Machine, "Xen's log names dom0's machine range");
      assert.ok(BigInt(r.ring.driverMachine) >= BigInt(r.dom0Machine.start));
      assert.match(
        r.device.availAtDriver ?? '',
        /0x0001 0x0001/,
        'the driver did publish avail idx 1',
      );
      assert.equal(qemusUnder('xen-pv-dom0-legacy-').length, 0);
    },
  );

  it('xen-pv-dom0-dma-api: the stock driver works under Xen', { skip }, async () => {
    const setup = loadSetup();
    const r = await runReal(cfg('xen-pv-dom0-dma-api'), { setup });
    assert.equal(r.outcome, 'ok', JSON.stringify(r, null, 2));
    assert.equal(r.ios.verified, 16);
    assert.equal(r.firstMisdirected, null);
    assert.ok(r.dom0Machine && r.device.desc);
    assert.ok(
      BigInt(r.device.desc) >= BigInt(r.dom0Machine.start),
      'the ring the device uses is dom0 machine memory',
    );
    assert.equal(qemusUnder('xen-pv-dom0-dma-api-').length, 0);
  });

  it(
    'xen-pv-dom0-half-fix: requests complete, their status and data land outside dom0',
    { skip: skipRows },
    async () => {
      const setup = loadSetup();
      const r = await runReal(cfg('xen-pv-dom0-half-fix'), { setup });
      assert.equal(r.outcome, 'silent-corruption', JSON.stringify(r, null, 2));
      assert.equal(r.ios.completed, r.ios.submitted);
      assert.equal(r.data.statusUnwritten, r.ios.completed, 'no status byte reached dom0');
      assert.equal(r.ios.verified, 0);
      assert.equal(
        r.device.desc,
        r.ring.driverMachine,
        'the ring itself is where the device looks',
      );
      assert.equal(r.firstMisdirected?.what, 'buffer');
      assert.equal(r.firstMisdirected.machine, r.data.given);
      assert.notEqual(r.data.given, r.data.machine);
      assert.match(
        r.firstMisdirected.owner,
        /^not-dom0/,
        "Xen's M2P: dom0 does not own that frame",
      );
      assert.equal(qemusUnder('xen-pv-dom0-half-fix-').length, 0);
    },
  );

  it(
    'bit25-qemu-device-under-xen: no bit 25 offered, so the ring goes out pseudo-physical',
    { skip: skipRows },
    async () => {
      const setup = loadSetup();
      const r = await runReal(cfg('bit25-qemu-device-under-xen'), { setup });
      assert.equal(r.outcome, 'misdirected-dma', JSON.stringify(r, null, 2));
      assert.equal(r.ios.completed, 0);
      assert.equal(BigInt(r.device.offered ?? '0') & (1n << 25n), 0n, 'QEMU offers no bit 25');
      assert.equal(r.firstMisdirected?.what, 'ring');
      assert.equal(r.device.desc, r.ring.given);
      assert.equal(qemusUnder('bit25-qemu-device-under-xen-').length, 0);
    },
  );

  it(
    'virtio-mmio on microvm, plain Linux: the stock driver finds the transport and verifies its I/O',
    { skip: skipRows },
    async () => {
      const setup = loadSetup();
      const r = await runReal(PLAIN_MMIO, { setup });
      assert.equal(r.outcome, 'ok', JSON.stringify(r, null, 2));
      assert.equal(r.ios.verified, 16);
      assert.ok(r.device.desc, "QEMU's virtio-mmio device reports its ring");
      assert.equal(qemusUnder('virtio-mmio-plain-linux-').length, 0);
    },
  );

  it(
    'x86-virtio-exemption-misplaced: faults on the translated pxb bus, naming it',
    { skip: skipRows },
    async () => {
      const setup = loadSetup();
      const misplaced = cfg('x86-virtio-exemption-misplaced');
      const r = await runReal(misplaced, { setup, timeoutMs: 180_000 });
      assert.equal(r.outcome, 'iommu-fault', JSON.stringify(r, null, 2));
      assert.ok((r.dma.faulted ?? 0) > 0);
      assert.notEqual(r.pci?.bus, '0000:00', 'the device sits behind the extra host bridge');
      assert.equal(qemusUnder('exemption-misplaced-').length, 0);
    },
  );

  it(
    'x86-virtio-exemption control: on the exempt root bus the same driver bypasses the IOMMU and its I/O works',
    { skip: skipRows },
    async () => {
      const setup = loadSetup();
      const r = await runReal(EXEMPTION_CONTROL, { setup, timeoutMs: 180_000 });
      assert.equal(r.outcome, 'isolation-bypass', JSON.stringify(r, null, 2));
      assert.equal(r.pci?.bus, '0000:00', 'the device sits on the root bus');
      assert.equal(r.dma.faulted, 0, 'no DMAR fault');
      assert.equal(r.dma.translated, 0, 'the exempt bus is never translated');
      assert.equal(r.ios.completed, r.ios.submitted);
      assert.equal(r.ios.submitted, EXEMPTION_CONTROL.ios);
      // Half the requests write, half read those blocks back.
      assert.equal(r.ios.verified, r.ios.submitted / 2, 'every block written read back intact');
      assert.equal(r.ios.corrupted, 0);
      assert.equal(qemusUnder('exemption-control-').length, 0);
    },
  );
});
