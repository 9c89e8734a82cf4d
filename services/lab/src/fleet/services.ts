import { fileURLToPath } from 'node:url';
import type { ServiceToken } from '@nestlab/protocol';

export interface FleetService {
  readonly name: string;
  readonly token: ServiceToken;
  /** The service's server.js, found through its package so any install layout works. */
  readonly entry: string;
  /** Admin port = base + this, matching each service's own default (base 7701). */
  readonly portOffset: number;
}

const entry = (pkg: string) => fileURLToPath(new URL('./server.js', import.meta.resolve(pkg)));

/** The four layers of the emulated stack, in start order (bottom up). */
export function fleetServices(): FleetService[] {
  return [
    { name: 'iommu', token: 'iommu', entry: entry('@nestlab/iommu'), portOffset: 3 },
    { name: 'l0-hypervisor', token: 'l0', entry: entry('@nestlab/l0-hypervisor'), portOffset: 0 },
    { name: 'xen', token: 'xen', entry: entry('@nestlab/xen'), portOffset: 1 },
    { name: 'dom0-kernel', token: 'dom0', entry: entry('@nestlab/dom0-kernel'), portOffset: 2 },
  ];
}
