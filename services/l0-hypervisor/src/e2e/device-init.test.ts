import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FeatureSet, VIRTIO_BLK_F, VIRTIO_F, VIRTIO_STATUS as S } from '@nestlab/virtio';
import { DEFAULT_BDF, DEFAULT_OFFER } from '../config.js';
import { TestDriver } from '../testing/driver.js';
import { startL0, type L0Harness } from '../testing/harness.js';
import { TRANSPORTS, configureOn } from '../testing/transports.js';

const V1 = FeatureSet.of(VIRTIO_F.VERSION_1);

// The same conformance checks against virtio-pci and virtio-mmio.
for (const transport of TRANSPORTS)
  describe(`virtio init over ${transport}: status machine and feature negotiation`, () => {
    let h: L0Harness;
    let d: TestDriver;
    const configure = async (requireAccessPlatform: boolean) => {
      const at = await configureOn(h, transport, { requireAccessPlatform, freshDisk: true });
      d = new TestDriver(h, DEFAULT_BDF, { kind: 'xen' }, at);
    };
    before(async () => {
      h = await startL0();
      await configure(false);
    });
    after(() => h?.stop());

    it('offers its features through device_feature_select 0 and 1', async () => {
      await d.discover();
      assert.equal((await d.deviceFeatures()).toHex(), DEFAULT_OFFER.toHex());
    });

    it('accepts a subset of the offer and reports it as negotiated', async () => {
      await configure(true);
      const want = V1.with(VIRTIO_F.ACCESS_PLATFORM, VIRTIO_BLK_F.FLUSH);
      const status = await d.negotiate(want);
      assert.equal(status & S.FEATURES_OK, S.FEATURES_OK);
      const st = await d.state();
      assert.equal(st.negotiated, want.toHex());
      assert.equal(st.offered, DEFAULT_OFFER.toHex());
    });

    it('refuses FEATURES_OK to a VERSION_1 driver without ACCESS_PLATFORM when it is required', async () => {
      await configure(true);
      const status = await d.negotiate(V1.with(VIRTIO_F.EVENT_IDX));
      assert.equal(status & S.FEATURES_OK, 0, 'FEATURES_OK not set on re-read');
      assert.equal(status & (S.ACKNOWLEDGE | S.DRIVER), S.ACKNOWLEDGE | S.DRIVER);
      assert.equal((await d.state()).negotiated, '0x0');
      await d.writeCommon('device_status', status | S.FAILED);
      assert.equal((await d.status()) & S.FAILED, S.FAILED);
    });

    it('does not refuse a legacy (non-VERSION_1) driver, as QEMU does not', async () => {
      await configure(true);
      const status = await d.negotiate(FeatureSet.of(VIRTIO_F.EVENT_IDX));
      assert.equal(status & S.FEATURES_OK, S.FEATURES_OK);
    });

    it('accepts VERSION_1 without ACCESS_PLATFORM when the device does not require it', async () => {
      await configure(false);
      assert.equal((await d.negotiate(V1)) & S.FEATURES_OK, S.FEATURES_OK);
    });

    it('refuses features that were not offered', async () => {
      await configure(false);
      const status = await d.negotiate(V1.with(VIRTIO_BLK_F.RO));
      assert.equal(status & S.FEATURES_OK, 0);
    });

    it('ignores driver_feature writes after FEATURES_OK and resets on status 0', async () => {
      await configure(false);
      await d.negotiate(V1);
      await d.writeCommon('driver_feature_select', 0);
      await d.writeCommon('driver_feature', 1 << VIRTIO_BLK_F.FLUSH);
      assert.equal((await d.state()).negotiated, V1.toHex());
      await d.writeCommon('device_status', 0);
      assert.equal(await d.status(), 0);
      assert.equal((await d.state()).negotiated, '0x0');
    });

    it('keeps NEEDS_RESET device-owned: a driver cannot set it', async () => {
      await configure(false);
      await d.negotiate(V1);
      await d.writeCommon(
        'device_status',
        S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK | S.NEEDS_RESET,
      );
      assert.equal((await d.status()) & S.NEEDS_RESET, 0);
    });

    it('reads queue_size 0 for a queue that does not exist', async () => {
      await configure(false);
      await d.negotiate(V1);
      await d.writeCommon('queue_select', 0);
      assert.equal(await d.readCommon('queue_size'), 256n);
      await d.writeCommon('queue_select', 1);
      assert.equal(await d.readCommon('queue_size'), 0n);
    });

    if (transport === 'pci') {
      it('reads notify_off 0 and NO_VECTOR for a vector beyond the MSI-X table', async () => {
        await configure(false);
        await d.negotiate(V1);
        await d.writeCommon('queue_select', 0);
        assert.equal(await d.readCommon('queue_notify_off'), 0n);
        await d.writeCommon('queue_msix_vector', 7);
        assert.equal(await d.readCommon('queue_msix_vector'), 0xffffn);
      });
    }
  });
