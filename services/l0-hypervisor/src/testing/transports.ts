// One device suite, two transports: configure L0 with its default device on
// the transport under test and say where the driver finds it.
import assert from 'node:assert/strict';
import { parseHex } from '@nestlab/addr';
import { L0Configure, type DeviceSetup } from '@nestlab/protocol';
import { defaultConfiguration } from '../config.js';
import type { DeviceAt } from './driver.js';
import type { L0Client } from './harness.js';

export const TRANSPORTS = ['pci', 'mmio'] as const;
/** The same, plus virtio-mmio version 1 (legacy), for suites that need no FEATURES_OK. */
export const TRANSPORTS_AND_LEGACY = [...TRANSPORTS, 'mmio-legacy'] as const;
export type TransportKind = (typeof TRANSPORTS_AND_LEGACY)[number];

/** L0Configure with the default device on `transport` (and `patch` applied); where it sits. */
export async function configureOn(
  h: L0Client,
  transport: TransportKind,
  patch: Partial<DeviceSetup> = {},
): Promise<DeviceAt> {
  const cfg = defaultConfiguration();
  const dev = cfg.devices[0];
  assert.ok(dev);
  const legacy = transport === 'mmio-legacy';
  const device = legacy
    ? { ...dev, ...patch, transport: 'mmio' as const, mmioVersion: 1 as const }
    : { ...dev, ...patch, transport };
  const r = await h.request(L0Configure, { ...cfg, devices: [device] });
  const placed = r.head.devices[0];
  assert.ok(placed);
  if (transport === 'pci') return { kind: 'pci' };
  assert.ok(placed.mmio, 'an mmio device reports its window');
  return {
    kind: 'mmio',
    base: parseHex('machine', placed.mmio.addr),
    irq: placed.mmio.irq,
    ...(legacy ? { legacy } : {}),
  };
}
