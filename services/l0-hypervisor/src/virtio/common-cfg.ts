// struct virtio_pci_common_cfg (spec 4.1.4.3) as registers of one device.
// Reads are served from a snapshot, so any width works; writes must hit a
// field at its width (or a 32-bit half of a 64-bit queue address, spec 4.1.3.1).
import {
  VIRTIO_MSI_NO_VECTOR,
  VIRTIO_PCI_COMMON_CFG as F,
  VIRTIO_PCI_COMMON_CFG_SIZE,
  commonCfgFieldAt,
} from '@nestlab/virtio';
import { MSIX_TABLE_SIZE } from '../pci/bar-layout.js';
import type { VirtioDevice } from './virtio-device.js';

/** The transport state common cfg shows and sets (VirtioPciTransport holds it). */
export interface CommonCfgRegisters {
  readonly dev: VirtioDevice;
  deviceFeatureSelect: number;
  driverFeatureSelect: number;
  queueSelect: number;
  configMsixVector: number;
  readonly configGeneration: number;
  /** queue_msix_vector of each queue. */
  readonly queueVectors: number[];
  /** device_status = 0: the transport's registers and the device back to power-on. */
  reset(): void;
}

export function readCommonCfg(t: CommonCfgRegisters): Uint8Array {
  const dev = t.dev;
  const out = new Uint8Array(VIRTIO_PCI_COMMON_CFG_SIZE);
  const v = new DataView(out.buffer);
  const q = dev.queues[t.queueSelect];
  v.setUint32(F.device_feature_select.offset, t.deviceFeatureSelect, true);
  v.setUint32(F.device_feature.offset, dev.status.offer.word(t.deviceFeatureSelect), true);
  v.setUint32(F.driver_feature_select.offset, t.driverFeatureSelect, true);
  v.setUint32(F.driver_feature.offset, dev.status.driverFeatures.word(t.driverFeatureSelect), true);
  v.setUint16(F.config_msix_vector.offset, t.configMsixVector, true);
  v.setUint16(F.num_queues.offset, dev.queues.length, true);
  v.setUint8(F.device_status.offset, dev.status.status);
  v.setUint8(F.config_generation.offset, t.configGeneration);
  v.setUint16(F.queue_select.offset, t.queueSelect, true);
  // A queue_select past num_queues reads queue_size 0: "not available" (spec 4.1.4.3.2).
  const vector = t.queueVectors[t.queueSelect] ?? VIRTIO_MSI_NO_VECTOR;
  v.setUint16(F.queue_msix_vector.offset, vector, true);
  if (q) {
    v.setUint16(F.queue_size.offset, q.size, true);
    v.setUint16(F.queue_enable.offset, q.ready ? 1 : 0, true);
    v.setUint16(F.queue_notify_off.offset, q.index, true);
    v.setBigUint64(F.queue_desc.offset, q.desc, true);
    v.setBigUint64(F.queue_driver.offset, q.driver, true);
    v.setBigUint64(F.queue_device.offset, q.device, true);
  }
  return out;
}

/** Applies one register write; returns false when it was ignored. */
export function writeCommonCfg(t: CommonCfgRegisters, offset: number, bytes: Uint8Array): boolean {
  const dev = t.dev;
  const hit = commonCfgFieldAt(offset);
  if (!hit) return false;
  const len = bytes.byteLength;
  const half = hit.field.width === 8 && len === 4 && (hit.within === 0 || hit.within === 4);
  if (!half && (hit.within !== 0 || len !== hit.field.width)) return false;
  const v = new DataView(bytes.buffer, bytes.byteOffset, len);
  const value =
    len === 1
      ? v.getUint8(0)
      : len === 2
        ? v.getUint16(0, true)
        : len === 4
          ? v.getUint32(0, true)
          : 0;
  const q = dev.queues[t.queueSelect];

  switch (hit.name) {
    case 'device_feature_select':
      t.deviceFeatureSelect = value;
      return true;
    case 'driver_feature_select':
      t.driverFeatureSelect = value;
      return true;
    case 'driver_feature':
      return dev.status.writeDriverFeatures(t.driverFeatureSelect, value);
    case 'config_msix_vector':
      t.configMsixVector = vectorOrNone(value);
      return true;
    case 'device_status':
      if (value === 0) t.reset();
      else dev.status.write(value);
      return true;
    case 'queue_select':
      t.queueSelect = value;
      return true;
    case 'queue_size':
      return q?.configure('size', value) ?? false;
    case 'queue_msix_vector':
      if (!q) return false;
      t.queueVectors[q.index] = vectorOrNone(value);
      return true;
    case 'queue_enable': {
      // Only 1 means anything; a driver MUST NOT write 0 (spec 4.1.4.3.2).
      if (!q || value !== 1 || q.ready) return false;
      dev.enableQueue(q);
      return true;
    }
    case 'queue_desc':
    case 'queue_driver':
    case 'queue_device': {
      if (!q) return false;
      const key =
        hit.name === 'queue_desc' ? 'desc' : hit.name === 'queue_driver' ? 'driver' : 'device';
      // A live ring ignores the write (no moving it under the device).
      return q.configure(
        key,
        len === 8 ? v.getBigUint64(0, true) : setHalf(q[key], hit.within, value),
      );
    }
    default:
      return false; // num_queues, device_feature, config_generation, notify_off/data, reset: read-only here
  }
}

/** A vector the MSI-X table does not have reads back as NO_VECTOR (QEMU virtio_pci msix_vector_use failing). */
function vectorOrNone(v: number): number {
  return v < MSIX_TABLE_SIZE ? v : VIRTIO_MSI_NO_VECTOR;
}

export function setHalf(old: bigint, within: number, word: number): bigint {
  const w = BigInt(word >>> 0);
  return within === 0 ? (old & 0xffff_ffff_0000_0000n) | w : (old & 0xffff_ffffn) | (w << 32n);
}
