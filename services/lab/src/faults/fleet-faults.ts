// The fleet's faults seen as one thing: the transport plan every service
// holds (they all get the same plan, each applies the rules that match what
// it receives), what each injected, and the domain faults that fired. Used by
// the console's faults panel and the `nestlab faults` command.
import {
  FaultControl,
  type DomainFaultKind,
  type DomainFaultRequest,
  type FaultPlan,
  type FaultRule,
} from '@nestlab/protocol';
import type { Bus } from '@nestlab/service-kit';

export const FAULT_SERVICES = ['l0', 'xen', 'dom0', 'iommu'] as const;
export type FaultService = (typeof FAULT_SERVICES)[number];

/** Which service owns each domain fault kind (the others refuse it). */
export const DOMAIN_FAULT_OWNER: Readonly<Record<DomainFaultKind, FaultService>> = {
  'device-reset': 'l0',
  'lose-msi': 'l0',
  'lose-doorbell': 'l0',
  'stale-iotlb': 'iommu',
  'unmap-in-flight': 'iommu',
  'p2m-change': 'xen',
  'lose-evtchn': 'xen',
};

export type ServiceFaults = Awaited<ReturnType<typeof readOne>>;

async function readOne(bus: Bus, s: FaultService) {
  return (await bus.request(FaultControl[s].list, {})).head;
}

/** Each service's plan, injections and domain events. */
export async function readFleetFaults(bus: Bus): Promise<Record<FaultService, ServiceFaults>> {
  const all = await Promise.all(FAULT_SERVICES.map((s) => readOne(bus, s)));
  return Object.fromEntries(FAULT_SERVICES.map((s, i) => [s, all[i]!])) as Record<
    FaultService,
    ServiceFaults
  >;
}

export async function setFleetPlan(bus: Bus, plan: FaultPlan): Promise<void> {
  for (const s of FAULT_SERVICES) await bus.request(FaultControl[s].set, plan);
}

/** Adds rules to the current plan (same id replaces); the seed stays unless given. */
export async function addFleetRules(bus: Bus, rules: FaultRule[], seed?: number): Promise<void> {
  const before = (await readOne(bus, 'l0')).plan;
  const ids = new Set(rules.map((r) => r.id));
  await setFleetPlan(bus, {
    seed: seed ?? before.seed,
    rules: [...before.rules.filter((r) => !ids.has(r.id)), ...rules],
  });
}

export const clearFleetPlan = (bus: Bus) => setFleetPlan(bus, { seed: 0, rules: [] });

/** Arms a domain fault on the service that owns it; returns how many events it will still hit. */
export async function injectDomainFault(
  bus: Bus,
  service: FaultService,
  req: DomainFaultRequest,
): Promise<number> {
  return (await bus.request(FaultControl[service].inject, req)).head.armed;
}
