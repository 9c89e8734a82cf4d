import { trace } from '@opentelemetry/api';
import { CpuFrames as CpuFramesMsg, MemAccess } from '@nestlab/protocol';
import type { ServiceContext } from '@nestlab/service-kit';
import { ATTR } from '@nestlab/telemetry';
import { L0Error } from '../errors.js';
import type { L0Service } from '../l0-service.js';
import { cpuAccess } from '../memory/cpu-access.js';
import type { L0Metrics } from '../metrics.js';

export function registerMemoryHandlers(
  ctx: ServiceContext,
  m: L0Service,
  metrics: L0Metrics,
): void {
  ctx.bus.handle(MemAccess, async ({ head, data }) => {
    if (head.ioIds?.length) trace.getActiveSpan()?.setAttribute(ATTR.ioId, head.ioIds.join(','));
    try {
      const out = await cpuAccess(
        { mem: m.mem, frames: m.frames, bus: m.pci },
        head.requester,
        head.ops,
        data,
        head.afterDoorbell,
      );
      return { body: { readLens: out.readLens }, data: out.data };
    } catch (err) {
      if (err instanceof L0Error) metrics.cpuDenied.inc({ code: err.code });
      throw err;
    }
  });

  ctx.bus.handle(CpuFramesMsg, async ({ head }) => ({
    body: { frames: await m.setFrames(head.domain, head.ranges) },
  }));
}
