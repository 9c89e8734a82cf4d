import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { RemoteError } from '@nestlab/protocol';
import { FeatureSet, VIRTIO_F, VIRTIO_STATUS } from '@nestlab/virtio';
import { AppHarness } from '../testing/app-harness.js';
import { shuffledP2m } from '../testing/xen-double.js';
import { acceptFeatures } from './init.js';

const { VERSION_1, ACCESS_PLATFORM, INDIRECT_DESC, EVENT_IDX } = VIRTIO_F;
const OFFER = FeatureSet.of(VERSION_1, ACCESS_PLATFORM, INDIRECT_DESC, EVENT_IDX, 1, 9, 30);
const WANT = FeatureSet.of(VERSION_1, ACCESS_PLATFORM, INDIRECT_DESC, EVENT_IDX, 9, 34);
const P2M = shuffledP2m(0x20000, 512, 0x40000);

describe('feature acceptance', () => {
  it('accepts offered ∩ wanted ∩ implemented, and a pre-2016 driver never bit 33', () => {
    const modern = acceptFeatures(OFFER, WANT, 'modern');
    assert.deepEqual(modern.list(), [9, 28, 29, 32, 33], 'bit 30 not wanted, bit 34 not offered');
    const old = acceptFeatures(OFFER, WANT, 'pre-2016');
    assert.deepEqual(old.list(), [9, 28, 29, 32]);
    assert.equal(
      acceptFeatures(OFFER, FeatureSet.EMPTY, 'modern').toHex(),
      '0x100000000',
      'VERSION_1 always',
    );
  });
});

describe('driver probe over NATS against an L0 register double', () => {
  let app: AppHarness;
  before(async () => {
    app = await AppHarness.start();
  });
  after(async () => {
    await app?.close();
  });

  it('refuses a job before a probe', async () => {
    await assert.rejects(
      app.job({
        rw: 'read',
        bs: 4096,
        iodepth: 1,
        ios: 1,
        seed: 1,
        verify: false,
        deadlineMs: 100,
        spanBytes: 4096,
      }),
      (e: RemoteError) => e.code === 'NOT_READY' && e.kind === 'input',
    );
  });

  it('modern driver: finds 00:04.0 through the capabilities, negotiates bit 33, sets up the queue, DRIVER_OK', async () => {
    const s = await app.scenario({ offer: OFFER, requireAccessPlatform: true }, P2M);
    await app.configure({
      generation: 'modern',
      policy: 'xen-swiotlb',
      wanted: WANT,
      queueSize: 128,
    });
    const r = await app.probe();
    assert.equal(r.error, null);
    assert.equal(r.ok, true);
    assert.equal(r.bdf, '0000:00:04.0');
    assert.equal(r.offered, OFFER.toHex());
    assert.equal(r.negotiated, FeatureSet.of(9, 28, 29, 32, 33).toHex());
    assert.equal(s.l0.accepted.toHex(), r.negotiated, 'what the device holds is what was reported');
    const ok =
      VIRTIO_STATUS.ACKNOWLEDGE |
      VIRTIO_STATUS.DRIVER |
      VIRTIO_STATUS.FEATURES_OK |
      VIRTIO_STATUS.DRIVER_OK;
    assert.equal(r.status, ok);
    assert.equal(s.l0.status, ok);
    assert.equal(s.l0.queue.size, 128);
    assert.equal(s.l0.queue.enable, 1);
    assert.equal(s.l0.queue.msix, 1);
    assert.equal(s.l0.configMsix, 0);
    assert.equal(s.l0.config[4]! & 0x6, 0x6, 'memory decoding and bus mastering on');
    assert.equal(s.l0.config[0x8b]! & 0x80, 0x80, 'MSI-X enabled');
    assert.deepEqual(
      s.xen.calls.filter((c) => c.startsWith('bind_msi')),
      ['bind_msi:0', 'bind_msi:1'],
    );
    // The ring: pseudo-physical at 512 MiB and up, device sees machine addresses (swiotlb-xen).
    assert.ok(r.ring);
    assert.ok(BigInt(r.ring.pseudo) >= 0x2000_0000n);
    assert.equal(BigInt(r.ring.bus), s.l0.queue.desc);
    const ringPfn = Number(BigInt(r.ring.pseudo) >> 12n);
    assert.equal(
      s.l0.queue.desc,
      BigInt(s.xen.p2m.get(ringPfn)!) << 12n,
      'bus = machine = P2M(pseudo)',
    );
    assert.notEqual(s.l0.queue.desc, BigInt(r.ring.pseudo));
    assert.deepEqual(
      s.xen.calls.slice(0, 2),
      ['p2m_get', 'memory_exchange:64'],
      'bounce pool exchanged',
    );
    assert.equal(s.l0.queue.driver, s.l0.queue.desc + 128n * 16n);
    assert.equal(
      s.l0.queue.device,
      s.l0.queue.desc + 4096n,
      'legacy layout: used ring on the next 4 KiB',
    );
    const { entries } = await app.ledger();
    assert.ok(entries.some((e) => e.what === 'ring' && e.bus === r.ring?.bus));
    // The order of status writes is the spec's (3.1.1).
    const statusWrites = s.l0.ops
      .filter((o) => o.mmio && o.op === 'write' && o.addr === 0xfe00_0014n)
      .map((o) => o.data![0]);
    assert.deepEqual(statusWrites, [0, 1, 3, 11, 15]);
  });

  it('pre-2016 driver against a device that requires ACCESS_PLATFORM: FAILED, clear error, no DMA at all', async () => {
    const s = await app.scenario({ offer: OFFER, requireAccessPlatform: true }, P2M);
    await app.configure({
      generation: 'pre-2016',
      policy: 'xen-swiotlb',
      wanted: WANT,
      queueSize: 128,
    });
    const r = await app.probe();
    assert.equal(r.ok, false);
    assert.deepEqual(r.error, {
      code: 'FEATURES_REJECTED',
      message:
        'device refused FEATURES_OK: it requires ACCESS_PLATFORM (bit 33), which this pre-2016 driver does not know',
    });
    assert.equal(s.l0.accepted.has(ACCESS_PLATFORM), false);
    assert.equal(s.l0.status & VIRTIO_STATUS.FAILED, VIRTIO_STATUS.FAILED);
    assert.equal(s.l0.status & (VIRTIO_STATUS.DRIVER_OK | VIRTIO_STATUS.FEATURES_OK), 0);
    assert.equal(r.status & VIRTIO_STATUS.FAILED, VIRTIO_STATUS.FAILED);
    assert.equal(r.ring, null);
    assert.deepEqual(s.l0.ramOps(), [], 'not one RAM access');
    assert.equal(s.l0.queue.desc, 0n);
    assert.deepEqual(s.xen.calls, ['p2m_get'], 'no exchange, no IOMMU map, no MSI binding');
    assert.deepEqual((await app.ledger()).entries, []);
    await assert.rejects(
      app.job({
        rw: 'read',
        bs: 4096,
        iodepth: 1,
        ios: 1,
        seed: 1,
        verify: false,
        deadlineMs: 100,
        spanBytes: 4096,
      }),
      (e: RemoteError) => e.code === 'NOT_READY',
    );
  });

  it('pre-2016 driver against a device that does not require the bit: works without it', async () => {
    const s = await app.scenario({ offer: OFFER, requireAccessPlatform: false }, P2M);
    await app.configure({ generation: 'pre-2016', policy: 'legacy', wanted: WANT, queueSize: 64 });
    const r = await app.probe();
    assert.equal(r.ok, true);
    assert.equal(FeatureSet.parseHex(r.negotiated).has(ACCESS_PLATFORM), false);
    assert.equal(
      s.l0.queue.desc,
      BigInt(r.ring!.pseudo),
      'legacy: the ring bus address is its pseudo-physical address',
    );
  });

  it('reports NO_DEVICE when bus 0 has no virtio-blk', async () => {
    const s = await app.scenario({ offer: OFFER }, P2M);
    s.l0.config[0] = 0xff;
    s.l0.config[1] = 0xff;
    const r = await app.probe();
    assert.equal(r.ok, false);
    assert.equal(r.bdf, null);
    assert.equal(r.error?.code, 'NO_DEVICE');
  });
});
