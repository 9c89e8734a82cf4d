import Fastify, { type FastifyInstance } from 'fastify';
import type { Bus } from '@nestlab/service-kit';
import { runScenario } from '../run/orchestrator.js';
import type { RunReport } from '../run/report.js';
import { lastReport, saveReport } from '../run/store.js';
import { catalogue } from '../scenarios/builtin.js';
import { registerFaultRoutes } from './faults-routes.js';
import { LiveCounts } from './live-counts.js';
import { OtlpError, decodeOtlp } from './otlp.js';
import { faultsPage } from './pages/faults-page.js';
import { scenariosPage } from './pages/scenarios-page.js';
import { tracePage } from './pages/trace-page.js';
import { TraceStore } from './trace-store.js';

export interface ConsoleOptions {
  store?: TraceStore;
  /** The fleet's bus, to run scenarios from the page; absent: the page only shows. */
  bus?: Bus;
  bodyLimit?: number;
}

/** The lab console: OTLP/HTTP receiver, trace store, scenario runs and the pages. */
export function buildConsole(
  opts: ConsoleOptions = {},
): FastifyInstance & { store: TraceStore; attachBus(bus: Bus): void } {
  const store = opts.store ?? new TraceStore();
  const live = new LiveCounts();
  const app = Fastify({ logger: false, bodyLimit: opts.bodyLimit ?? 32 << 20 });
  let running: { id: string; started: number } | null = null;
  let bus = opts.bus;

  app.addContentTypeParser('application/x-protobuf', (_req, _payload, done) => {
    done(
      Object.assign(
        new Error('send OTLP/HTTP as JSON (application/json); protobuf is not accepted'),
        { statusCode: 415, code: 'OTLP_PROTOBUF' },
      ),
      undefined,
    );
  });

  app.post('/v1/traces', async (req) => {
    const spans = decodeOtlp(req.body);
    for (const s of spans) {
      store.add(s);
      live.observe(s);
    }
    return { partialSuccess: {} };
  });

  app.get('/api/traces', async (req) => {
    const limit = Math.min(1000, Number((req.query as { limit?: string }).limit ?? 100) || 100);
    return { traces: store.summaries(limit), stats: store.stats() };
  });
  app.get<{ Params: { id: string } }>('/api/traces/:id', async (req, reply) => {
    const spans = store.get(req.params.id.toLowerCase());
    if (!spans)
      return reply.code(404).send({
        code: 'TRACE_NOT_FOUND',
        message: `no trace ${req.params.id} in the console's store`,
      });
    return { traceId: req.params.id.toLowerCase(), spans };
  });

  app.get('/api/scenarios', async () => {
    const cat = catalogue();
    return {
      scenarios: cat.files.map((f) => ({
        id: f.id,
        title: f.title,
        expected: f.expected,
        runnable: cat.whyNot(f.id) === null,
        lastRun: lastReport(f.id),
      })),
    };
  });
  app.post<{ Params: { id: string }; Body: { seed?: number; ios?: number } | undefined }>(
    '/api/scenarios/:id/run',
    async (req, reply) => {
      if (!bus)
        return reply
          .code(503)
          .send({ code: 'NO_FLEET', message: 'this console is not attached to a fleet' });
      const cat = catalogue();
      const scenario = cat.find(req.params.id);
      if (!scenario)
        return reply
          .code(404)
          .send({ code: 'SCENARIO_NOT_FOUND', message: `unknown scenario ${req.params.id}` });
      const why = cat.whyNot(req.params.id);
      if (why) return reply.code(422).send({ code: 'SCENARIO_NOT_RUNNABLE', message: why });
      if (running)
        return reply
          .code(409)
          .send({ code: 'RUN_IN_PROGRESS', message: `${running.id} is running` });
      const fleetBus = bus;
      running = { id: scenario.id, started: Date.now() };
      live.reset();
      try {
        const seed = Number(req.body?.seed ?? 1);
        const report: RunReport = await runScenario(fleetBus, scenario, {
          seed: Number.isInteger(seed) && seed >= 0 ? seed : 1,
          ...(req.body?.ios
            ? { ios: Math.max(1, Math.min(100_000, Number(req.body.ios) || 1)) }
            : {}),
        });
        saveReport(report);
        return report;
      } finally {
        running = null;
      }
    },
  );
  registerFaultRoutes(app, () => bus);
  app.get('/api/live', async () => ({ running, ...live.snapshot(), stats: store.stats() }));

  app.get('/', async (_req, reply) => reply.type('text/html; charset=utf-8').send(scenariosPage()));
  app.get('/faults', async (_req, reply) =>
    reply.type('text/html; charset=utf-8').send(faultsPage()),
  );
  app.get<{ Params: { id: string } }>('/trace/:id', async (req, reply) =>
    reply.type('text/html; charset=utf-8').send(tracePage(req.params.id)),
  );
  app.get('/healthz', async () => ({ status: 'ok', service: 'console' }));

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, _req, reply) => {
    const status =
      err instanceof OtlpError
        ? 400
        : err.statusCode && err.statusCode >= 400
          ? err.statusCode
          : 500;
    return reply.code(status).send({ code: err.code ?? 'INTERNAL', message: err.message });
  });
  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send({ code: 'NOT_FOUND', message: `no route ${req.method} ${req.url}` }),
  );
  return Object.assign(app, { store, attachBus: (b: Bus) => void (bus = b) });
}
