// Interrupt routing: a device's MSI reaches Xen, which notifies the event
// channel bound to it (Xen's pirq -> evtchn path, send_guest_pirq). The
// bindings (PHYSDEVOP_map_pirq + EVTCHNOP_bind_pirq, in one BindMsi
// hypercall) are the EventChannels table below: each (bdf, vector) is bound
// to one port of one domain.
import { BindMsi, EventChannel, Msi } from '@nestlab/protocol';
import type { ServiceContext } from '@nestlab/service-kit';
import { XenError } from '../errors.js';
import type { XenMetrics } from '../metrics.js';

/** What routing needs of the running hypervisor (xen-service.ts owns one): no import back. */
interface IrqHost {
  readonly ctx: ServiceContext;
  readonly evtchn: EventChannels;
  readonly metrics: XenMetrics;
  /** The lose-evtchn fault (irq/evtchn-faults.ts): true when this notification is lost. */
  readonly lostEvtchn: { suppress(b: Binding): boolean };
  /** Throws NOT_CONFIGURED before XenConfigure. */
  require(): { domain(id: number): unknown };
  persist(rec: { t: 'bind'; domain: number; bdf: string; vector: number }): void;
}

export function registerIrq(xen: IrqHost): void {
  const { bus, log } = xen.ctx;

  bus.handle(BindMsi, ({ head }) => {
    try {
      xen.require().domain(head.domain);
      const port = xen.evtchn.bind(head.domain, head.bdf, head.vector);
      xen.persist({ t: 'bind', domain: head.domain, bdf: head.bdf, vector: head.vector });
      xen.metrics.hypercalls.inc({ op: 'bind_msi', result: 'ok' });
      log.debug({ ...head, port }, 'msi bound');
      return { body: { port } };
    } catch (err) {
      xen.metrics.hypercalls.inc({ op: 'bind_msi', result: 'error' });
      throw err;
    }
  });

  // An MSI is fire-and-forget: an unbound one is counted and dropped, as a
  // pirq with no event channel is on real Xen.
  bus.handle(Msi, ({ head }) => {
    const b = xen.evtchn.lookup(head.bdf, head.vector);
    if (!b) {
      xen.metrics.msisUnbound.inc({ bdf: head.bdf });
      log.warn({ bdf: head.bdf, vector: head.vector }, 'MSI with no bound event channel dropped');
      return;
    }
    xen.metrics.msisRouted.inc({ domain: String(b.domain) });
    if (xen.lostEvtchn.suppress(b)) return;
    bus.publish(EventChannel, { port: b.port }, { params: { port: String(b.port) } });
    xen.metrics.evtchnSent.inc({ domain: String(b.domain) });
  });
}

const MAX_PORT = 4095;

export interface Binding {
  readonly bdf: string;
  readonly vector: number;
  readonly domain: number;
  readonly port: number;
}

const key = (bdf: string, vector: number) => `${bdf}#${vector}`;

export class EventChannels {
  private readonly byIrq = new Map<string, Binding>();
  private readonly usedPorts = new Map<number, Set<number>>();

  /** Binds (bdf, vector) to a port of `domain`; rebinding to the same domain keeps its port. */
  bind(domain: number, bdf: string, vector: number): number {
    const old = this.byIrq.get(key(bdf, vector));
    if (old?.domain === domain) return old.port;
    if (old) this.usedPorts.get(old.domain)?.delete(old.port);
    const used = this.usedPorts.get(domain) ?? new Set<number>();
    this.usedPorts.set(domain, used);
    for (let port = 1; port <= MAX_PORT; port++) {
      if (used.has(port)) continue;
      used.add(port);
      this.byIrq.set(key(bdf, vector), { bdf, vector, domain, port });
      return port;
    }
    throw new XenError('NO_FREE_PORT', `dom${domain} has no free event channel port`);
  }

  /** Puts back a binding read from the journal, port and all. */
  restore(b: Binding): void {
    this.byIrq.set(key(b.bdf, b.vector), { ...b });
    const used = this.usedPorts.get(b.domain) ?? new Set<number>();
    used.add(b.port);
    this.usedPorts.set(b.domain, used);
  }

  lookup(bdf: string, vector: number): Binding | undefined {
    return this.byIrq.get(key(bdf, vector));
  }

  list(): Binding[] {
    return [...this.byIrq.values()];
  }

  clear(): void {
    this.byIrq.clear();
    this.usedPorts.clear();
  }
}
