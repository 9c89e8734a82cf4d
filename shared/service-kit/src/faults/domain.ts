import {
  errorFamily,
  type DomainFaultEvent,
  type DomainFaultKind,
  type DomainFaultRequest,
} from '@nestlab/protocol';

/** A domain fault a service cannot arm: not its kind, or not in its current state. */
export const DomainFaultError = errorFamily('DomainFaultError', {
  FAULT_KIND_UNSUPPORTED: 'input',
  FAULT_NOT_APPLICABLE: 'input',
});
export type DomainFaultError = InstanceType<typeof DomainFaultError>;

/**
 * What a service does when a domain fault of one kind is armed. `arm` either
 * acts at once (returns 0) or remembers the request and returns how many
 * events it will hit; when one fires, the service calls `DomainFaults.fired`.
 */
export type DomainFaultHandler = (req: DomainFaultRequest) => number | Promise<number>;

const LOG_LIMIT = 1000;

/**
 * A service's domain-fault switchboard: the kinds it owns, and the log of
 * those that fired (what `nestlab faults list` and experiments report).
 */
export class DomainFaults {
  private readonly handlers = new Map<DomainFaultKind, DomainFaultHandler>();
  private readonly log: DomainFaultEvent[] = [];
  private readonly hits = new Map<string, number>();

  constructor(private readonly service: string) {}

  /** Declares that this service owns `kind`. */
  on(kind: DomainFaultKind, handler: DomainFaultHandler): void {
    this.handlers.set(kind, handler);
  }

  async arm(req: DomainFaultRequest): Promise<number> {
    const handler = this.handlers.get(req.kind);
    if (!handler) {
      const own = [...this.handlers.keys()];
      throw new DomainFaultError(
        'FAULT_KIND_UNSUPPORTED',
        `${this.service} has no ${req.kind} fault (it has: ${own.join(', ') || 'none'})`,
      );
    }
    return handler(req);
  }

  /** Records that a fault of `kind` hit something; `detail` says what. */
  fired(kind: DomainFaultKind, detail: string): void {
    const n = this.hits.get(kind) ?? 0;
    this.hits.set(kind, n + 1);
    this.log.push({ kind, n, atMs: Date.now(), detail: detail.slice(0, 512) });
    if (this.log.length > LOG_LIMIT) this.log.shift();
  }

  events(): DomainFaultEvent[] {
    return [...this.log];
  }
}
