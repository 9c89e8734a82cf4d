import Fastify, { type FastifyInstance } from 'fastify';
import type { MetricsRegistry } from './metrics.js';
import { guardPressure, type PressureLimits } from './pressure.js';

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

/** The admin app, built without listening so tests can `inject()` into it. */
export function buildAdminApp(src: AdminSources): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: 1 << 20 });
  guardPressure(app, src.pressure);
  app.get('/healthz', async () => ({ status: 'ok', service: src.service }));
  app.get('/readyz', async (_req, reply) => {
    const r = src.readiness();
    return reply.code(r.ready ? 200 : 503).send({ service: src.service, ...r });
  });
  app.get('/metrics', async (_req, reply) =>
    reply.type('text/plain; version=0.0.4').send(src.metrics.render()),
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
