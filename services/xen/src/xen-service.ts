// The running hypervisor: current tables, event channels, metrics, and the
// outgoing calls to L0 and the IOMMU with their failures mapped to XenErrors.
import { CpuFrames, isCodedError } from '@nestlab/protocol';
import type { ServiceContext } from '@nestlab/service-kit';
import type { XenState } from './domains/xen-state.js';
import { EventChannels } from './irq/event-channels.js';
import { xenMetrics, type XenMetrics } from './metrics.js';
import { Serial } from './serial.js';
import { XenError, type XenErrorCode } from './errors.js';

const MAX_CPU_RANGES = 1 << 16;
const L0_TIMEOUT_MS = 3000;

export class XenService {
  current: XenState | undefined;
  readonly evtchn = new EventChannels();
  readonly metrics: XenMetrics;
  readonly serial = new Serial();

  constructor(readonly ctx: ServiceContext) {
    this.metrics = xenMetrics(ctx.metrics);
  }

  require(): XenState {
    if (!this.current) throw new XenError('NOT_CONFIGURED', 'send XenConfigure first');
    return this.current;
  }

  /** Tells L0 which frames the domain's CPU may touch (full replacement). */
  async pushCpuFrames(state: XenState, domain: number): Promise<number> {
    const ranges = state.cpuFrames(domain);
    if (ranges.length > MAX_CPU_RANGES)
      throw new XenError(
        'INTERNAL',
        `dom${domain} owns ${ranges.length} runs; CpuFrames carries at most ${MAX_CPU_RANGES}`,
      );
    try {
      const reply = await this.ctx.bus.request(
        CpuFrames,
        { domain, ranges },
        { timeoutMs: L0_TIMEOUT_MS },
      );
      this.metrics.cpuFramesPushes.inc({ result: 'ok' });
      return reply.head.frames;
    } catch (err) {
      this.metrics.cpuFramesPushes.inc({ result: 'error' });
      // L0's own error code would be misleading as the answer to our caller.
      throw remoteFailure('L0_UNAVAILABLE', 'L0 did not take the CpuFrames update', err, false);
    }
  }

  state() {
    return {
      configured: this.current !== undefined,
      ...(this.current?.summary() ?? {}),
      bindings: this.evtchn.list(),
    };
  }
}

/**
 * A failed call to another service: no responder or timeout is transient
 * (retry later). A peer's error reply is passed on with its code when
 * `passPeerCodes` (the IOMMU's verdict, e.g. IOVA_IN_USE, is the answer),
 * else wrapped as an internal failure under `code`.
 */
export function remoteFailure(
  code: XenErrorCode,
  what: string,
  err: unknown,
  passPeerCodes: boolean,
): Error {
  if (isCodedError(err) && (err.code === 'NO_RESPONDERS' || err.code === 'TIMEOUT')) {
    return new XenError(code, `${what}: ${err.code}`, { cause: err });
  }
  if (passPeerCodes && isCodedError(err) && err instanceof Error) return err;
  const detail = isCodedError(err) ? `${err.code}: ${err.message}` : String(err);
  return new XenError(code, `${what}: ${detail}`, { cause: err, kind: 'internal' });
}
