import { machineOfFrame, mfn, pfn, pseudoPhysOfFrame } from '@nestlab/addr';
import { FrameOwners, MemoryExchange, P2mGet } from '@nestlab/protocol';
import { ATTR, recordStep } from '@nestlab/telemetry';
import { applyExchange, planExchange, revertExchange } from '../domains/exchange.js';
import { XenError } from '../errors.js';
import type { XenService } from '../xen-service.js';

export function registerMemory(xen: XenService): void {
  const { bus } = xen.ctx;

  bus.handle(P2mGet, ({ head }) => {
    const { p2m } = xen.require().domain(head.domain);
    return { body: { domain: head.domain, pages: p2m.pages, ranges: [...p2m.all()] } };
  });

  bus.handle(FrameOwners, ({ head }) => {
    const ft = xen.require().frameTable;
    return { body: { owners: head.mfns.map((m) => ft.ownerOf(m)) } };
  });

  bus.handle(MemoryExchange, ({ head }) =>
    xen.serial.run(async () => {
      const op = { op: 'memory_exchange' };
      try {
        const state = xen.require();
        if (!state.config.present)
          throw new XenError('XEN_ABSENT', 'no Xen (present=false): the P2M is the identity');
        const plan = planExchange(state, head.domain, head.pfns);
        applyExchange(state, plan);
        try {
          await xen.pushCpuFrames(state, head.domain);
        } catch (err) {
          // L0 still enforces the old frame set: undo, so Xen and L0 agree.
          revertExchange(state, plan);
          throw err;
        }
        xen.persist({ t: 'xchg', domain: head.domain, pfns: head.pfns, mfnFirst: plan.mfnFirst });
        const first = head.pfns[0]!;
        recordStep(state.domain(head.domain).p2m.translate(pseudoPhysOfFrame(pfn(first))).step, {
          [ATTR.frameOwner]: `dom${head.domain}`,
        });
        xen.metrics.hypercalls.inc({ ...op, result: 'ok' });
        xen.metrics.exchanges.inc({ result: 'ok' });
        xen.metrics.exchangedPages.inc({}, head.pfns.length);
        xen.ctx.log.debug(
          { pfns: head.pfns.length, machine: machineOfFrame(mfn(plan.mfnFirst)).toString(16) },
          'memory exchanged',
        );
        return {
          body: {
            mfnFirst: plan.mfnFirst,
            updates: head.pfns.map((p, i) => ({ pfn: p, mfn: plan.mfnFirst + i })),
          },
        };
      } catch (err) {
        xen.metrics.hypercalls.inc({ ...op, result: 'error' });
        xen.metrics.exchanges.inc({ result: 'error' });
        throw err;
      }
    }),
  );
}
