import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { busAddr } from '@nestlab/addr';
import {
  VIRTIO_ID,
  VIRTIO_MMIO,
  VIRTIO_PCI_COMMON_CFG,
  VIRTIO_PCI_COMMON_CFG_SIZE,
  commonCfgFieldAt,
  mmioRegisterAt,
  modernPciDeviceId,
  notifyAddr,
  notifyOffset,
} from './index.js';

describe('virtio-pci helpers', () => {
  it('gives virtio-blk the modern device id 0x1042', () => {
    assert.equal(modernPciDeviceId(VIRTIO_ID.BLOCK), 0x1042);
  });

  it('computes the notify address as cap offset + queue_notify_off * multiplier', () => {
    assert.equal(notifyOffset(0x3000, 2, 4), 0x3008);
    assert.equal(notifyAddr(busAddr(0xfe000000n), 0x3000, 2, 4), 0xfe003008n);
    assert.throws(() => notifyOffset(-1, 0, 0), { code: 'INVALID_ARGUMENT' });
  });

  it('decodes common config accesses, including the high half of a queue address', () => {
    assert.deepEqual(commonCfgFieldAt(36), {
      name: 'queue_desc',
      field: VIRTIO_PCI_COMMON_CFG.queue_desc,
      within: 4,
    });
    assert.equal(commonCfgFieldAt(20)?.name, 'device_status');
    assert.equal(commonCfgFieldAt(VIRTIO_PCI_COMMON_CFG_SIZE), undefined);
  });

  it('has no overlapping or gapped common config fields', () => {
    const fields = Object.values(VIRTIO_PCI_COMMON_CFG).sort((a, b) => a.offset - b.offset);
    let end = 0;
    for (const f of fields) {
      assert.equal(f.offset, end);
      end = f.offset + f.width;
    }
    assert.equal(end, VIRTIO_PCI_COMMON_CFG_SIZE);
  });
});

describe('virtio-mmio helpers', () => {
  it('names registers by offset', () => {
    assert.equal(mmioRegisterAt(0x050), 'QUEUE_NOTIFY');
    assert.equal(mmioRegisterAt(VIRTIO_MMIO.STATUS), 'STATUS');
    assert.equal(mmioRegisterAt(0x054), undefined);
  });
});
