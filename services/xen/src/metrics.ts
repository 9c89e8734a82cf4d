import type { MetricsRegistry } from '@nestlab/service-kit';

export function xenMetrics(reg: MetricsRegistry) {
  return {
    hypercalls: reg.counter('nestlab_xen_hypercalls_total', 'Hypercalls, by op and result', [
      'op',
      'result',
    ]),
    msisRouted: reg.counter(
      'nestlab_xen_msis_routed_total',
      'MSIs routed to an event channel, by domain',
      ['domain'],
    ),
    msisUnbound: reg.counter(
      'nestlab_xen_msis_unbound_total',
      'MSIs dropped because no event channel is bound to them, by device',
      ['bdf'],
    ),
    evtchnSent: reg.counter(
      'nestlab_xen_evtchn_sent_total',
      'Event channel notifications sent, by domain',
      ['domain'],
    ),
    evtchnLost: reg.counter(
      'nestlab_xen_evtchn_lost_total',
      'Event channel notifications not sent (lose-evtchn fault), by domain',
      ['domain'],
    ),
    exchanges: reg.counter('nestlab_xen_memory_exchanges_total', 'Memory exchanges, by result', [
      'result',
    ]),
    exchangedPages: reg.counter(
      'nestlab_xen_exchanged_pages_total',
      'Pages traded by memory exchanges',
    ),
    cpuFramesPushes: reg.counter(
      'nestlab_xen_cpu_frames_pushes_total',
      'CpuFrames updates sent to L0, by result',
      ['result'],
    ),
  };
}
export type XenMetrics = ReturnType<typeof xenMetrics>;
