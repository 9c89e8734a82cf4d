import { toHex } from '@nestlab/addr';
import { XenConfigure } from '@nestlab/protocol';
import { XenState } from '../domains/xen-state.js';
import type { XenService } from '../xen-service.js';

/**
 * XenConfigure: rebuild domains, P2M and frame table, drop every binding,
 * then tell L0 what dom0's CPU may touch. The new tables stay in force even
 * when L0 does not answer (the reply is then L0_UNAVAILABLE, transient): a
 * retry of the same configure rebuilds the same layout and pushes again.
 */
export function registerConfigure(xen: XenService): void {
  xen.ctx.bus.handle(XenConfigure, ({ head }) =>
    xen.serial.run(async () => {
      const state = new XenState({
        present: head.present,
        machineBytes: head.machineBytes,
        dom0Bytes: head.dom0Bytes,
        seed: head.seed,
        passthrough: head.passthrough,
      });
      xen.current = state;
      xen.evtchn.clear();
      xen.persist({ t: 'cfg', config: state.config });
      const dom0 = state.domain(0);
      xen.ctx.log.info(
        { present: head.present, seed: head.seed, p2mRanges: dom0.p2m.rangeCount },
        'configured',
      );
      await xen.pushCpuFrames(state, 0);
      return {
        body: {
          dom0Pages: dom0.p2m.pages,
          p2mRanges: dom0.p2m.rangeCount,
          dom0MachineRanges: state.cpuFrames(0).map((r) => ({
            first: toHex(r.first * 4096),
            last: toHex((r.first + r.count) * 4096 - 1),
          })),
        },
      };
    }),
  );
}
