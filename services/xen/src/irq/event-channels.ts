// MSI -> event channel routing (PHYSDEVOP_map_pirq + EVTCHNOP_bind_pirq, in
// one BindMsi hypercall): each (bdf, vector) is bound to one port of one domain.
import { XenError } from '../errors.js';

export const MAX_PORT = 4095;

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
