// Cross-checks every layout and constant against Linux uapi headers on this
// machine (Debian linux-libc-dev), through a C probe compiled with `cc`.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BLK_REQ_HEADER,
  BLK_REQ_HEADER_SIZE,
  DESC_SIZE,
  LEGACY_VRING_ALIGN,
  PCI_CAP_ID_MSIX,
  PCI_CAP_ID_VNDR,
  PCI_CFG,
  PCI_COMMAND,
  PCI_MSIX,
  PCI_STATUS_CAP_LIST,
  SPLIT_RING_ALIGN,
  USED_ELEM_SIZE,
  VIRTIO_BLK_CONFIG,
  VIRTIO_BLK_F,
  VIRTIO_BLK_ID_BYTES,
  VIRTIO_BLK_S,
  VIRTIO_BLK_T,
  VIRTIO_F,
  VIRTIO_ID,
  VIRTIO_MMIO,
  VIRTIO_MMIO_INT,
  VIRTIO_MMIO_MAGIC,
  VIRTIO_MSI_NO_VECTOR,
  VIRTIO_PCI_CAP,
  VIRTIO_PCI_CAP_LAYOUT,
  VIRTIO_PCI_CAP_SIZE,
  VIRTIO_PCI_COMMON_CFG,
  VIRTIO_PCI_ISR,
  VIRTIO_PCI_NOTIFY_CAP_MULT,
  VIRTIO_PCI_NOTIFY_CAP_SIZE,
  VIRTIO_STATUS,
  VRING_AVAIL_F_NO_INTERRUPT,
  VRING_DESC_F,
  VRING_USED_F_NO_NOTIFY,
  legacyRingLayout,
  pciBarOffset,
  splitRingLayout,
  vringNeedEvent,
  vringSize,
} from './index.js';
import { NEED_EVENT_SAMPLES, VRING_SIZE_QUEUES, uapi, uapiValues } from './testing/uapi-probe.js';

/** Compares a TS table with macros `${prefix}${key}` (or explicit names). */
function sameAsMacros(
  table: Record<string, number>,
  prefix: string,
  rename: Record<string, string> = {},
) {
  const ours: Record<string, number> = {};
  const theirs: Record<string, number> = {};
  for (const [k, v] of Object.entries(table)) {
    const macro = rename[k] ?? `${prefix}${k}`;
    ours[macro] = v;
    theirs[macro] = uapi(macro);
  }
  assert.deepEqual(ours, theirs);
}

/** Compares {offset,width} fields with offsetof/sizeof of `struct s`, header field names via `rename`. */
function sameAsStruct(
  table: Record<string, { offset: number; width: number }>,
  s: string,
  rename: Record<string, string> = {},
) {
  const ours: Record<string, [number, number]> = {};
  const theirs: Record<string, [number, number]> = {};
  for (const [k, f] of Object.entries(table)) {
    const field = rename[k] ?? k;
    ours[field] = [f.offset, f.width];
    theirs[field] = [uapi(`offsetof.${s}.${field}`), uapi(`sizeof.${s}.${field}`)];
  }
  assert.deepEqual(ours, theirs);
}

describe('uapi cross-check', () => {
  it('runs the C probe (needs gcc and linux-libc-dev)', () => {
    assert.ok(Object.keys(uapiValues()).length > 100);
  });

  it('status bits, feature bits and descriptor flags', () => {
    sameAsMacros(VIRTIO_STATUS, 'VIRTIO_CONFIG_S_');
    sameAsMacros(VIRTIO_F, 'VIRTIO_F_', {
      INDIRECT_DESC: 'VIRTIO_RING_F_INDIRECT_DESC',
      EVENT_IDX: 'VIRTIO_RING_F_EVENT_IDX',
    });
    assert.equal(VIRTIO_F.ACCESS_PLATFORM, uapi('VIRTIO_F_IOMMU_PLATFORM'));
    sameAsMacros(VIRTIO_BLK_F, 'VIRTIO_BLK_F_');
    sameAsMacros(VRING_DESC_F, 'VRING_DESC_F_');
    assert.equal(VRING_USED_F_NO_NOTIFY, uapi('VRING_USED_F_NO_NOTIFY'));
    assert.equal(VRING_AVAIL_F_NO_INTERRUPT, uapi('VRING_AVAIL_F_NO_INTERRUPT'));
  });

  it('virtio-blk types, status values, ids and request header', () => {
    sameAsMacros(VIRTIO_BLK_T, 'VIRTIO_BLK_T_');
    sameAsMacros(VIRTIO_BLK_S, 'VIRTIO_BLK_S_');
    assert.equal(VIRTIO_BLK_ID_BYTES, uapi('VIRTIO_BLK_ID_BYTES'));
    sameAsMacros(VIRTIO_ID, 'VIRTIO_ID_');
    sameAsStruct(BLK_REQ_HEADER, 'virtio_blk_outhdr', { reserved: 'ioprio' });
    assert.equal(BLK_REQ_HEADER_SIZE, uapi('sizeof.virtio_blk_outhdr'));
  });

  it('struct virtio_blk_config', () => {
    sameAsStruct(VIRTIO_BLK_CONFIG, 'virtio_blk_config', {
      geometry_cylinders: 'geometry.cylinders',
      geometry_heads: 'geometry.heads',
      geometry_sectors: 'geometry.sectors',
    });
    assert.equal(uapi('offsetof.virtio_blk_config.geometry'), 16);
  });

  it('split ring element sizes, field offsets and alignments', () => {
    assert.equal(DESC_SIZE, uapi('sizeof.vring_desc'));
    assert.equal(USED_ELEM_SIZE, uapi('sizeof.vring_used_elem'));
    sameAsStruct(
      {
        addr: { offset: 0, width: 8 },
        len: { offset: 8, width: 4 },
        flags: { offset: 12, width: 2 },
        next: { offset: 14, width: 2 },
      },
      'vring_desc',
    );
    sameAsStruct({ id: { offset: 0, width: 4 }, len: { offset: 4, width: 4 } }, 'vring_used_elem');
    const l = splitRingLayout(8);
    for (const [s, area, elem] of [
      ['vring_avail', l.avail, 2],
      ['vring_used', l.used, USED_ELEM_SIZE],
    ] as const) {
      assert.equal(area.flags, uapi(`offsetof.${s}.flags`));
      assert.equal(area.idx, uapi(`offsetof.${s}.idx`));
      assert.equal(area.ring, uapi(`offsetof.${s}.ring[0]`));
      assert.equal(elem, uapi(`sizeof.${s}.ring[0]`));
    }
    assert.deepEqual(SPLIT_RING_ALIGN, {
      desc: uapi('VRING_DESC_ALIGN_SIZE'),
      avail: uapi('VRING_AVAIL_ALIGN_SIZE'),
      used: uapi('VRING_USED_ALIGN_SIZE'),
    });
    assert.equal(LEGACY_VRING_ALIGN, uapi('VIRTIO_PCI_VRING_ALIGN'));
  });

  it('vring_size() and vring_init() offsets for each queue size', () => {
    for (const q of VRING_SIZE_QUEUES) {
      const legacy = legacyRingLayout(q, 4096);
      const l = splitRingLayout(q);
      assert.deepEqual(
        {
          q,
          size: vringSize(q, 4096),
          avail: legacy.availOffset,
          used: legacy.usedOffset,
          usedEvent: legacy.availOffset + l.avail.usedEvent,
          availEvent: legacy.usedOffset + l.used.availEvent,
        },
        {
          q,
          size: uapi(`vring_size.${q}`),
          avail: uapi(`vring_init.${q}.avail`),
          used: uapi(`vring_init.${q}.used`),
          usedEvent: uapi(`vring_init.${q}.used_event`),
          availEvent: uapi(`vring_init.${q}.avail_event`),
        },
      );
    }
  });

  it('vring_need_event() agrees with the C inline for every sampled triple', () => {
    const s = NEED_EVENT_SAMPLES;
    let ours = '';
    for (const a of s)
      for (const b of s) for (const c of s) ours += vringNeedEvent(a, b, c) ? '1' : '0';
    assert.equal(ours, uapiValues()['need_event']);
  });

  it('virtio-mmio registers', () => {
    sameAsMacros(VIRTIO_MMIO, 'VIRTIO_MMIO_');
    sameAsMacros(VIRTIO_MMIO_INT, 'VIRTIO_MMIO_INT_');
    assert.equal(VIRTIO_MMIO_MAGIC, Buffer.from('virt').readUInt32LE(0));
  });

  it('virtio-pci capabilities', () => {
    sameAsMacros(VIRTIO_PCI_CAP, 'VIRTIO_PCI_CAP_');
    sameAsStruct(VIRTIO_PCI_CAP_LAYOUT, 'virtio_pci_cap');
    assert.equal(uapi('offsetof.virtio_pci_cap.padding'), 6);
    assert.equal(VIRTIO_PCI_CAP_SIZE, uapi('sizeof.virtio_pci_cap'));
    sameAsMacros(
      {
        cap_vndr: VIRTIO_PCI_CAP_LAYOUT.cap_vndr.offset,
        cap_next: VIRTIO_PCI_CAP_LAYOUT.cap_next.offset,
        cap_len: VIRTIO_PCI_CAP_LAYOUT.cap_len.offset,
        cfg_type: VIRTIO_PCI_CAP_LAYOUT.cfg_type.offset,
        bar: VIRTIO_PCI_CAP_LAYOUT.bar.offset,
        offset: VIRTIO_PCI_CAP_LAYOUT.offset.offset,
        length: VIRTIO_PCI_CAP_LAYOUT.length.offset,
        mult: VIRTIO_PCI_NOTIFY_CAP_MULT.offset,
      },
      '',
      {
        cap_vndr: 'VIRTIO_PCI_CAP_VNDR',
        cap_next: 'VIRTIO_PCI_CAP_NEXT',
        cap_len: 'VIRTIO_PCI_CAP_LEN',
        cfg_type: 'VIRTIO_PCI_CAP_CFG_TYPE',
        bar: 'VIRTIO_PCI_CAP_BAR',
        offset: 'VIRTIO_PCI_CAP_OFFSET',
        length: 'VIRTIO_PCI_CAP_LENGTH',
        mult: 'VIRTIO_PCI_NOTIFY_CAP_MULT',
      },
    );
    assert.equal(
      VIRTIO_PCI_NOTIFY_CAP_MULT.offset,
      uapi('offsetof.virtio_pci_notify_cap.notify_off_multiplier'),
    );
    assert.equal(VIRTIO_PCI_NOTIFY_CAP_SIZE, uapi('sizeof.virtio_pci_notify_cap'));
    assert.equal(VIRTIO_PCI_ISR.CONFIG, uapi('VIRTIO_PCI_ISR_CONFIG'));
    assert.equal(VIRTIO_MSI_NO_VECTOR, uapi('VIRTIO_MSI_NO_VECTOR'));
  });

  it('struct virtio_pci_common_cfg (spec names mapped to Linux names)', () => {
    const c = VIRTIO_PCI_COMMON_CFG;
    const { queue_desc, queue_driver, queue_device, queue_notify_data, queue_reset, ...rest } = c;
    sameAsStruct(rest, 'virtio_pci_common_cfg', {
      driver_feature_select: 'guest_feature_select',
      driver_feature: 'guest_feature',
      config_msix_vector: 'msix_config',
    });
    // 64-bit queue addresses are lo/hi u32 pairs in the header.
    for (const [ours, lo, hi] of [
      [queue_desc, 'queue_desc_lo', 'queue_desc_hi'],
      [queue_driver, 'queue_avail_lo', 'queue_avail_hi'],
      [queue_device, 'queue_used_lo', 'queue_used_hi'],
    ] as const) {
      assert.equal(ours.offset, uapi(`offsetof.virtio_pci_common_cfg.${lo}`));
      assert.equal(ours.offset + 4, uapi(`offsetof.virtio_pci_common_cfg.${hi}`));
      assert.equal(ours.width, 8);
    }
    assert.equal(queue_notify_data.offset, uapi('VIRTIO_PCI_COMMON_Q_NDATA'));
    assert.equal(queue_reset.offset, uapi('VIRTIO_PCI_COMMON_Q_RESET'));
    assert.equal(queue_notify_data.offset, uapi('sizeof.virtio_pci_common_cfg'));
    // The "old timers" macros name the same offsets.
    sameAsMacros(
      {
        DFSELECT: c.device_feature_select.offset,
        DF: c.device_feature.offset,
        GFSELECT: c.driver_feature_select.offset,
        GF: c.driver_feature.offset,
        MSIX: c.config_msix_vector.offset,
        NUMQ: c.num_queues.offset,
        STATUS: c.device_status.offset,
        CFGGENERATION: c.config_generation.offset,
        Q_SELECT: c.queue_select.offset,
        Q_SIZE: c.queue_size.offset,
        Q_MSIX: c.queue_msix_vector.offset,
        Q_ENABLE: c.queue_enable.offset,
        Q_NOFF: c.queue_notify_off.offset,
        Q_DESCLO: c.queue_desc.offset,
        Q_AVAILLO: c.queue_driver.offset,
        Q_USEDLO: c.queue_device.offset,
      },
      'VIRTIO_PCI_COMMON_',
    );
  });

  it('PCI configuration header, capability ids and MSI-X', () => {
    const { CLASS_BASE, BAR0, ...rest } = PCI_CFG;
    sameAsMacros(rest, 'PCI_');
    assert.equal(CLASS_BASE, uapi('PCI_CLASS_DEVICE') + 1);
    assert.equal(BAR0, uapi('PCI_BASE_ADDRESS_0'));
    for (let bar = 0; bar < 6; bar++)
      assert.equal(pciBarOffset(bar), uapi(`PCI_BASE_ADDRESS_${bar}`));
    assert.equal(PCI_CAP_ID_VNDR, uapi('PCI_CAP_ID_VNDR'));
    assert.equal(PCI_CAP_ID_MSIX, uapi('PCI_CAP_ID_MSIX'));
    assert.equal(PCI_STATUS_CAP_LIST, uapi('PCI_STATUS_CAP_LIST'));
    sameAsMacros(PCI_COMMAND, 'PCI_COMMAND_');
    sameAsMacros(PCI_MSIX, 'PCI_MSIX_');
  });
});
