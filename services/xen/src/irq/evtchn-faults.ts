// The lose-evtchn domain fault: Xen routes a delivered interrupt (an MSI or
// a virtio-mmio line) to its bound event channel but does not notify the
// port, as if the notification were lost between Xen and the guest. The
// schedule counts delivered interrupts in the order Xen handles them, one by
// one: not NATS messages on the event-channel subject, whose number depends
// on how a transport fault plan or the receiver batches them.
import { Countdown, DomainFaultError, type ServiceContext } from '@nestlab/service-kit';
import type { XenMetrics } from '../metrics.js';
import type { Binding } from '../handlers/irq.js';

/** What the fault needs of the running hypervisor (xen-service.ts owns one): no import back. */
interface FaultHost {
  readonly metrics: XenMetrics;
  readonly ctx: ServiceContext;
}
interface RegisterHost extends FaultHost {
  readonly current: { readonly config: { readonly present: boolean } } | null | undefined;
  readonly lostEvtchn: LostNotifications;
}

export class LostNotifications {
  private readonly countdown = new Countdown();
  /** Delivered interrupts seen since the last arming (names a hit reproducibly). */
  private delivered = 0;

  constructor(private readonly xen: FaultHost) {}

  /** Arms the fault; returns how many notifications it will suppress. */
  arm(after: number, count: number): number {
    this.delivered = 0;
    return this.countdown.arm(after, count);
  }

  /** Call once per delivered interrupt; true when its notification must not be sent. */
  suppress(b: Binding): boolean {
    const n = this.delivered++;
    if (!this.countdown.hit()) return false;
    this.xen.metrics.evtchnLost.inc({ domain: String(b.domain) });
    this.xen.ctx.faults.fired(
      'lose-evtchn',
      `dom${b.domain} port ${b.port} (${b.bdf} vector ${b.vector}): interrupt ${n} since arming not notified`,
    );
    return true;
  }

  get pending(): number {
    return this.countdown.pending;
  }
}

export function registerEvtchnFaults(xen: RegisterHost): void {
  xen.ctx.faults.on('lose-evtchn', (req) => {
    // Without Xen (a KVM stack) interrupts never reach an event channel.
    if (xen.current && !xen.current.config.present)
      throw new DomainFaultError(
        'FAULT_NOT_APPLICABLE',
        'no Xen (present=false): no event channels',
      );
    return xen.lostEvtchn.arm(req.after ?? 0, req.count ?? 1);
  });
}
