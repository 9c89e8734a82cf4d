// The running hypervisor: current tables, event channels, metrics, and the
// outgoing calls to L0 and the IOMMU with their failures mapped to XenErrors.
import { CpuFrames, isCodedError, isUnreachable } from '@nestlab/protocol';
import type { ServiceContext } from '@nestlab/service-kit';
import type { DmaMap } from './domains/dma-maps.js';
import type { XenState } from './domains/xen-state.js';
import { EventChannels } from './handlers/irq.js';
import { LostNotifications } from './irq/evtchn-faults.js';
import { xenMetrics, type XenMetrics } from './metrics.js';
import { XenJournal, journalPath, type XenRecord } from './persist/xen-journal.js';
import { Serial } from './serial.js';
import { XenError, type XenErrorCode } from './errors.js';

const MAX_CPU_RANGES = 1 << 16;
export const L0_TIMEOUT_MS = 3000;
const RESYNC_ATTEMPTS = 40;
const RESYNC_PAUSE_MS = 500;

export class XenService {
  current: XenState | undefined;
  readonly evtchn = new EventChannels();
  readonly metrics: XenMetrics;
  readonly serial = new Serial();
  /** The lose-evtchn fault's schedule (irq/evtchn-faults.ts). */
  readonly lostEvtchn = new LostNotifications(this);
  /** Sees every IOMMU mapping Xen programmed (the p2m-change fault hooks in here). */
  onMapped: ((m: DmaMap) => void) | undefined;
  private journal: XenJournal | undefined;

  constructor(
    readonly ctx: ServiceContext,
    private readonly dataDir?: string,
  ) {
    this.metrics = xenMetrics(ctx.metrics);
  }

  /**
   * Comes back with the domains of the last run (its configuration and all
   * that happened since), then tells L0 again which frames their CPUs may
   * touch, in the background: L0 may be restarting too.
   */
  restore(): void {
    if (!this.dataDir) return;
    const path = journalPath(this.dataDir, this.ctx.config.stack);
    const { journal, replayed } = XenJournal.open(path, this, this.ctx.log, this.ctx.bus);
    this.journal = journal;
    if (replayed === 0 || !this.current) return;
    this.ctx.log.warn(
      { path, records: replayed, ...this.current.summary().frameTable.framesByOwner },
      'restored the domains of the previous run',
    );
    void this.resync(this.current);
  }

  persist(rec: XenRecord): void {
    this.journal?.write(rec);
  }

  close(): void {
    this.journal?.close();
  }

  /** Records a mapping Xen programmed into the IOMMU. */
  mapped(state: XenState, m: DmaMap): void {
    state.dmaMaps.add(m);
    this.persist({ t: 'map', m });
    this.onMapped?.(m);
  }

  private async resync(state: XenState): Promise<void> {
    for (let attempt = 1; attempt <= RESYNC_ATTEMPTS; attempt++) {
      try {
        const done = await this.serial.run(async () => {
          // A configure since the restart has pushed its own frames (checked in
          // turn, so an old frame set never lands after a newer one).
          if (this.current !== state) return false;
          for (const id of state.domains.keys()) await this.pushCpuFrames(state, id);
          return true;
        });
        if (!done) return;
        this.ctx.log.info({ attempt }, 'CpuFrames pushed again after restart');
        return;
      } catch {
        await new Promise((r) => setTimeout(r, RESYNC_PAUSE_MS));
      }
    }
    this.ctx.log.warn('L0 did not take the CpuFrames update after restart');
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
  if (isUnreachable(err)) {
    return new XenError(code, `${what}: ${err.code}`, { cause: err });
  }
  if (passPeerCodes && isCodedError(err) && err instanceof Error) return err;
  const detail = isCodedError(err) ? `${err.code}: ${err.message}` : String(err);
  return new XenError(code, `${what}: ${detail}`, { cause: err, kind: 'internal' });
}
