import Fastify, { type FastifyInstance } from 'fastify';
import underPressure from '@fastify/under-pressure';
import type { MetricsRegistry } from './metrics.js';

export interface PressureLimits {
  /** Refuse work when the event loop lags more than this (mean over the last window), ms; 0: off. */
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

export interface AdminSources {
  service: string;
  /** NATS connected and the service finished starting. */
  readiness(): { ready: boolean; nats: boolean; started: boolean };
  state(): unknown;
  metrics: MetricsRegistry;
  /** Extra routes a service adds (state inspection, runtime configuration). */
  routes?: (app: FastifyInstance) => void;
  /** Overload limits for the 503 guard (defaults: 2 s event-loop lag, 1.5 GiB heap). */
  pressure?: Partial<PressureLimits>;
}

const PRESSURE_WHAT: Record<string, (value: number, l: PressureLimits) => string> = {
  eventLoopDelay: (v, l) => `event loop lag ${Math.round(v)} ms > ${l.maxEventLoopDelayMs} ms`,
  heapUsedBytes: (v, l) => `heap ${v >> 20} MiB > ${l.maxHeapUsedBytes >> 20} MiB`,
};

/**
 * Admin endpoints answer 503 UNDER_PRESSURE (with Retry-After) while the
 * process is overloaded, instead of queueing more work behind a stalled event
 * loop; /healthz stays answered so a supervisor sees the process is alive.
 * @fastify/under-pressure samples on a timer, so a request costs nothing extra.
 */
function guardPressure(app: FastifyInstance, limits: Partial<PressureLimits> = {}): void {
  const l = { ...DEFAULT_PRESSURE, ...limits };
  const retryAfter = Math.ceil(l.sampleIntervalMs / 1000);
  void app.register(underPressure, {
    maxEventLoopDelay: l.maxEventLoopDelayMs,
    maxHeapUsedBytes: l.maxHeapUsedBytes,
    sampleInterval: l.sampleIntervalMs,
    // A non-null return is sent as the body; undefined lets the request through.
    pressureHandler: (req, reply, type, value) => {
      if (req.url === '/healthz') return;
      const why = PRESSURE_WHAT[type]?.(value ?? 0, l) ?? type;
      reply.code(503).header('retry-after', String(retryAfter));
      const body = { code: 'UNDER_PRESSURE', message: `service overloaded: ${why}` };
      return body as unknown as void;
    },
  });
}

/** The admin app, built without listening so tests can `inject()` into it. */
export function buildAdminApp(src: AdminSources): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: 1 << 20 });
  guardPressure(app, src.pressure);
  app.get('/healthz', async () => ({ status: 'ok', service: src.service }));
  app.get('/readyz', async (_req, reply) => {
    const r = src.readiness();
    // The pid lets a launcher tell its own child from another process that won the port.
    return reply.code(r.ready ? 200 : 503).send({ service: src.service, pid: process.pid, ...r });
  });
  app.get('/metrics', async (_req, reply) =>
    reply.type(src.metrics.contentType).send(await src.metrics.render()),
  );
  app.get('/state', async () => src.state());
  src.routes?.(app);
  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send({ code: 'NOT_FOUND', message: `no route ${req.method} ${req.url}` }),
  );
  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, _req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 ? err.statusCode : 500;
    return reply.code(status).send({ code: err.code ?? 'INTERNAL', message: err.message });
  });
  return app;
}
