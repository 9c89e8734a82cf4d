// Recovery of a hung or reset device, as real drivers do it. A watch ticks
// while the driver is live: when I/O is waiting on the device and the used
// ring has not moved for the hang timeout, it first polls the used ring (a
// lost MSI leaves completions sitting there); if that finds nothing, it
// resets the device (status 0, wait until it reads 0), runs the init
// sequence, has the virtqueue set itself up again on the same ring memory
// (virtio/virtqueue.ts), and the block layer, subscribed to the queue,
// resubmits every I/O not yet completed. NEEDS_RESET, a device found
// in reset (L0 restarted) and a broken used ring take the same reset path.
// A reset that fails (L0 still away) is tried again with backoff; I/O meanwhile
// waits and fails TIMEOUT at its deadline, never hangs.
import { VIRTIO_STATUS, FeatureSet } from '@nestlab/virtio';
import type { Logger } from 'pino';
import type { BlockDevice } from './block/block-device.js';
import type { DriverConfig } from './driver-config.js';
import { errorInfo } from './errors.js';
import type { Dom0Metrics } from './metrics.js';
import type { ProbedDevice } from './probe.js';
import { CONFIG_VECTOR } from './virtio/interrupts.js';
import { driverOk, negotiate, type InitProgress } from './virtio/init.js';

export type ResetReason = 'hung-queue' | 'needs-reset' | 'device-reset-found' | 'device-broken';

export interface RecoveryStats {
  /** Successful device resets by the recovery path. */
  resets: number;
  /** Reset attempts that failed (the device or L0 did not answer); retried. */
  failedResets: number;
  /** Hung-queue polls that found completions whose interrupt never came. */
  lostInterruptsRecovered: number;
  lastReset: { reason: ResetReason; resubmitted: number; at: string } | null;
}

/** What recovery needs of the live device: its registers, queue and features, and whether I/O stalls. */
export interface RecoverableDevice extends Pick<ProbedDevice, 'regs' | 'queue' | 'negotiated'> {
  readonly block: Pick<BlockDevice, 'stall'>;
}

export interface HangWatchDeps {
  live(): RecoverableDevice | null;
  config(): DriverConfig;
  readonly metrics: Dom0Metrics;
  readonly log: Logger;
  /** Fixed hang timeout; default min(1000 ms, shortest in-flight deadline / 4). */
  readonly hangMs?: number;
  /** The device came back different (features, queue size): nothing can be resubmitted. */
  giveUp(live: RecoverableDevice, reason: string): void;
}

const TICK_MS = 20;
const MIN_HANG_MS = 20;
const MAX_DEFAULT_HANG_MS = 1000;
const MIN_POLL_TIMEOUT_MS = 200;
const RETRY_FIRST_MS = 50;
const RETRY_MAX_MS = 2000;

export class HangWatch {
  readonly stats: RecoveryStats = {
    resets: 0,
    failedResets: 0,
    lostInterruptsRecovered: 0,
    lastReset: null,
  };
  private timer: NodeJS.Timeout | null = null;
  private polling = false;
  private resetting: Promise<void> | null = null;
  /** A reset that failed, to try again at `at`. */
  private retry: {
    live: RecoverableDevice;
    reason: ResetReason;
    at: number;
    waitMs: number;
  } | null = null;

  constructor(private readonly d: HangWatchDeps) {}

  start(): void {
    this.stop();
    this.timer = setInterval(() => this.tick(), TICK_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.retry = null;
  }

  hangMs(minDeadlineMs: number): number {
    return this.d.hangMs ?? Math.max(MIN_HANG_MS, Math.min(MAX_DEFAULT_HANG_MS, minDeadlineMs / 4));
  }

  private tick(): void {
    const live = this.d.live();
    if (live === null || this.polling || this.resetting !== null) return;
    const r = this.retry;
    if (r !== null) {
      if (r.live !== live) this.retry = null;
      else if (Date.now() >= r.at) void this.recover(live, r.reason);
      return;
    }
    const stall = live.block.stall();
    if (stall === null) return;
    const hang = this.hangMs(stall.minDeadlineMs);
    if (stall.ms < hang) return;
    if (!live.queue.quiet) {
      // A harvest is under way; one stuck that long (L0 died holding its request) is a hang too.
      if (stall.ms >= 2 * hang) void this.recover(live, 'hung-queue');
      return;
    }
    this.polling = true;
    void this.poll(live, hang).finally(() => (this.polling = false));
  }

  /** The first step on a hang: read the used ring ourselves. */
  private async poll(live: RecoverableDevice, hang: number): Promise<void> {
    let found: number | null;
    try {
      found = await live.queue.poll(Math.max(MIN_POLL_TIMEOUT_MS, hang));
    } catch (err) {
      if (this.d.live() !== live) return;
      // A broken ring fails everything and resets (driver's ring error path); L0 away: reset.
      const e = errorInfo(err);
      if (e.code === 'DEVICE_BROKEN') live.queue.raise(err);
      else void this.recover(live, 'hung-queue');
      return;
    }
    if (found === null || this.d.live() !== live) return;
    if (found > 0) {
      this.stats.lostInterruptsRecovered++;
      this.d.metrics.lostInterrupts.inc();
      this.d.log.warn({ completions: found }, 'lost interrupt recovered by polling');
      return;
    }
    await this.recover(live, 'hung-queue');
  }

  /**
   * Before new work: a device that reads 0 (reset: L0 restarted) or has
   * NEEDS_RESET while the driver thinks it live is reset and set up again.
   */
  async checkDevice(live: RecoverableDevice): Promise<void> {
    if (this.resetting !== null) return this.resetting;
    const status = await live.regs.read('device_status').catch(() => null);
    if (status === null || this.d.live() !== live) return;
    if (status & VIRTIO_STATUS.NEEDS_RESET) return this.recover(live, 'needs-reset');
    if (!(status & VIRTIO_STATUS.DRIVER_OK)) return this.recover(live, 'device-reset-found');
  }

  /** Resolves once no reset is running (a probe must not interleave its register writes with one). */
  async settle(): Promise<void> {
    while (this.resetting !== null) await this.resetting;
  }

  /** Resets the device and resubmits; one reset at a time (a running one covers this call). */
  recover(live: RecoverableDevice, reason: ResetReason): Promise<void> {
    if (this.resetting !== null) return this.resetting;
    const run = this.reset(live, reason).finally(() => (this.resetting = null));
    this.resetting = run;
    return run;
  }

  private async reset(live: RecoverableDevice, reason: ResetReason): Promise<void> {
    const { queue, regs } = live;
    queue.suspend(`device reset (${reason})`);
    const cfg = this.d.config();
    const p: InitProgress = { status: 0, offered: FeatureSet.EMPTY, negotiated: FeatureSet.EMPTY };
    try {
      await negotiate(regs, cfg.wanted, cfg.generation, p);
      if (!p.negotiated.equals(live.negotiated)) {
        return this.abandon(
          live,
          `after reset the device negotiated ${p.negotiated.toHex()}, not ${live.negotiated.toHex()}`,
        );
      }
      if (regs.kind === 'pci') await regs.write('config_msix_vector', CONFIG_VECTOR);
      const smaller = await queue.setUpAgain();
      if (smaller !== null) return this.abandon(live, smaller);
      await driverOk(regs, p);
      if (this.d.live() !== live) return queue.discard('driver re-probed during the reset');
      const resubmitted = queue.resume();
      this.retry = null;
      this.stats.resets++;
      this.stats.lastReset = { reason, resubmitted, at: new Date().toISOString() };
      this.d.metrics.resets.inc({ reason });
      this.d.log.warn({ reason, resubmitted }, 'device reset and queue set up again');
    } catch (err) {
      this.stats.failedResets++;
      const waitMs = Math.min(RETRY_MAX_MS, (this.retry?.waitMs ?? RETRY_FIRST_MS / 2) * 2);
      this.retry = { live, reason, at: Date.now() + waitMs, waitMs };
      this.d.log.warn({ err: errorInfo(err), reason, retryInMs: waitMs }, 'device reset failed');
    }
  }

  private abandon(live: RecoverableDevice, why: string): void {
    this.retry = null;
    this.d.giveUp(live, why);
    live.queue.resume(); // on the closed ring: nothing more goes out
    this.d.log.error({ why }, 'device came back different: giving up until re-probed');
  }
}
