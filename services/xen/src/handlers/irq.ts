// Interrupt routing: a device's MSI reaches Xen, which notifies the event
// channel bound to it (Xen's pirq -> evtchn path, send_guest_pirq).
import { BindMsi, EventChannel, Msi } from '@nestlab/protocol';
import type { XenService } from '../xen-service.js';

export function registerIrq(xen: XenService): void {
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
