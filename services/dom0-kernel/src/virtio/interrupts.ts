// MSI-X vectors → event channels (Linux xen_pci_frontend / PHYSDEVOP_map_pirq,
// then bind_pirq_to_irq). Vector 0: config change; vector 1: used buffers.
import { BindMsi } from '@nestlab/protocol';
import type { BusPort } from '../bus-port.js';
import { DOM0_DOMID } from '../mm/cpu-memory.js';

export const CONFIG_VECTOR = 0;
export const QUEUE_VECTOR = 1;

/** 'line': a virtio-mmio device's one interrupt; InterruptStatus says which cause. */
export type VectorRole = 'config' | 'queue' | 'line';

export interface InterruptRouting {
  readonly ports: ReadonlyMap<number, VectorRole>;
  readonly configPort: number;
  readonly queuePort: number;
}

/**
 * A virtio-mmio interrupt line → one event channel (on Xen/ARM, a GSI routed
 * to dom0; Xen's table is keyed by device and number, as for MSI vectors).
 */
export async function bindLine(bus: BusPort, bdf: string, irq: number): Promise<InterruptRouting> {
  const port = (await bus.request(BindMsi, { domain: DOM0_DOMID, bdf, vector: irq })).head.port;
  return { ports: new Map([[port, 'line']]), configPort: port, queuePort: port };
}

export async function bindVectors(bus: BusPort, bdf: string): Promise<InterruptRouting> {
  const configPort = (
    await bus.request(BindMsi, { domain: DOM0_DOMID, bdf, vector: CONFIG_VECTOR })
  ).head.port;
  const queuePort = (await bus.request(BindMsi, { domain: DOM0_DOMID, bdf, vector: QUEUE_VECTOR }))
    .head.port;
  const ports = new Map<number, VectorRole>([
    [configPort, 'config'],
    [queuePort, 'queue'],
  ]);
  return { ports, configPort, queuePort };
}
