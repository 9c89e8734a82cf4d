import type { FastifyInstance } from 'fastify';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';

export interface PressureLimits {
  /** Refuse work when the event loop lags more than this (p99 over the last window), ms. */
  maxEventLoopDelayMs: number;
  /** Refuse work when the V8 heap holds more than this, bytes. */
  maxHeapUsedBytes: number;
  /** How often the lag and heap are sampled, ms. */
  sampleIntervalMs: number;
}

export const DEFAULT_PRESSURE: PressureLimits = {
  maxEventLoopDelayMs: 2000,
  maxHeapUsedBytes: 1536 << 20,
  sampleIntervalMs: 1000,
};

/**
 * Admin endpoints answer 503 UNDER_PRESSURE (with Retry-After) while the
 * process is overloaded, instead of queueing more work behind a stalled event
 * loop; /healthz stays answered so a supervisor sees the process is alive.
 * Samples are taken on a timer, so a request costs nothing extra.
 */
export function guardPressure(app: FastifyInstance, limits: Partial<PressureLimits> = {}): void {
  const l = { ...DEFAULT_PRESSURE, ...limits };
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  let why: string | null = null;
  let last = performance.now();
  const sample = () => {
    // The sampler's own lateness counts too: right after a stall the
    // histogram may not have its late tick yet, but this callback is late.
    const now = performance.now();
    const late = now - last - l.sampleIntervalMs;
    last = now;
    const lagMs = Math.max(delay.percentile(99) / 1e6, late);
    delay.reset();
    const heap = process.memoryUsage().heapUsed;
    why =
      lagMs > l.maxEventLoopDelayMs
        ? `event loop lag ${Math.round(lagMs)} ms > ${l.maxEventLoopDelayMs} ms`
        : heap > l.maxHeapUsedBytes
          ? `heap ${heap >> 20} MiB > ${l.maxHeapUsedBytes >> 20} MiB`
          : null;
  };
  const timer = setInterval(sample, l.sampleIntervalMs);
  timer.unref();
  app.addHook('onRequest', async (req, reply) => {
    if (why && req.url !== '/healthz') {
      await reply
        .code(503)
        .header('retry-after', String(Math.ceil(l.sampleIntervalMs / 1000)))
        .send({ code: 'UNDER_PRESSURE', message: `service overloaded: ${why}` });
    }
  });
  app.addHook('onClose', async () => {
    clearInterval(timer);
    delay.disable();
  });
}
