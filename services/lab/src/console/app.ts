import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Bus } from '@nestlab/service-kit';
import { RunRequest } from '../run/limits.js';
import { runScenario } from '../run/orchestrator.js';
import type { RunReport } from '../run/report.js';
import { lastReport, saveReport } from '../run/store.js';
import { catalogue } from '../scenarios/builtin.js';
import { GROUPS, UNGROUPED } from '../scenarios/scenario.js';
import { registerAssets } from './assets.js';
import { registerFaultRoutes } from './faults-routes.js';
import { LiveCounts } from './live-counts.js';
import { OtlpError, decodeOtlp } from './otlp.js';
import { registerRealGuestRoutes } from './real-guest-routes.js';
import { faultsPage } from './pages/faults-page.js';
import { scenariosPage } from './pages/scenarios-page.js';
import { tracePage } from './pages/trace-page.js';
import { TraceStore } from './trace-store.js';
import { FleetLeaseError } from '../fleet/fleet-lease.js';

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
  const app = Fastify({
    logger: false,
    bodyLimit: opts.bodyLimit ?? 32 << 20,
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false } },
  });
  let running: { id: string; started: number; cancel: AbortController } | null = null;
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

  // `?stack=` keeps the traces with a span from that stack; `stacks` lists every stack seen.
  app.withTypeProvider<TypeBoxTypeProvider>().get(
    '/api/traces',
    {
      schema: {
        querystring: Type.Object({
          limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,7}$' })),
          stack: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
        }),
      },
    },
    async (req) => {
      const limit = Math.min(1000, Number(req.query.limit ?? 100) || 100);
      return {
        traces: store.summaries(limit, req.query.stack),
        stacks: store.stacks(),
        stats: store.stats(),
      };
    },
  );
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
      groups: [...GROUPS, UNGROUPED],
      scenarios: cat.files.map((f) => ({
        id: f.id,
        title: f.title,
        expected: f.expected,
        group: f.group ?? UNGROUPED.id,
        runnable: cat.whyNot(f.id) === null,
        lastRun: lastReport(f.id),
      })),
    };
  });
  // Bodies are checked against RunRequest, the CLI's limits: a bad value is a
  // 400 naming it, never a default or a clamp (no type coercion, no unknown keys).
  app.withTypeProvider<TypeBoxTypeProvider>().post(
    '/api/scenarios/:id/run',
    {
      schema: { params: Type.Object({ id: Type.String() }), body: RunRequest },
      // No body at all is an empty one: every knob takes the scenario's default.
      preValidation: async (req) => void (req.body ??= {}),
    },
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
      const cancel = new AbortController();
      running = { id: scenario.id, started: Date.now(), cancel };
      live.reset();
      try {
        const { seed = 1, ios, iodepth } = req.body;
        const report: RunReport = await runScenario(fleetBus, scenario, {
          seed,
          ...(ios === undefined ? {} : { ios }),
          ...(iodepth === undefined ? {} : { iodepth }),
          signal: cancel.signal,
        });
        saveReport(report);
        return report;
      } catch (err) {
        // A CLI run holds the fleet: the same answer as for one of our own runs.
        if (FleetLeaseError.is(err, 'FLEET_BUSY'))
          return reply.code(409).send({ code: 'RUN_IN_PROGRESS', message: err.message });
        throw err;
      } finally {
        running = null;
      }
    },
  );
  app.post('/api/run/cancel', async (_req, reply) => {
    if (!running)
      return reply.code(409).send({ code: 'NO_RUN_IN_PROGRESS', message: 'no run is in progress' });
    running.cancel.abort();
    return { cancelled: running.id };
  });
  registerFaultRoutes(app, () => bus);
  registerRealGuestRoutes(app);
  app.get('/api/live', async () => ({
    running: running && { id: running.id, started: running.started },
    ...live.snapshot(),
    stats: store.stats(),
  }));

  app.get('/', async (_req, reply) => reply.type('text/html; charset=utf-8').send(scenariosPage()));
  app.get('/faults', async (_req, reply) =>
    reply.type('text/html; charset=utf-8').send(faultsPage()),
  );
  app.get<{ Params: { id: string } }>('/trace/:id', async (req, reply) =>
    reply.type('text/html; charset=utf-8').send(tracePage(req.params.id)),
  );
  registerAssets(app);
  app.get('/healthz', async () => ({ status: 'ok', service: 'console' }));

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, _req, reply) => {
    const status =
      err instanceof OtlpError
        ? 400
        : err.statusCode && err.statusCode >= 400
          ? err.statusCode
          : 500;
    // A request schema's refusal (fastify's FST_ERR_VALIDATION) gets one stable code.
    const code = 'validation' in err ? 'INVALID_REQUEST' : (err.code ?? 'INTERNAL');
    return reply.code(status).send({ code, message: err.message });
  });
  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send({ code: 'NOT_FOUND', message: `no route ${req.method} ${req.url}` }),
  );
  return Object.assign(app, { store, attachBus: (b: Bus) => void (bus = b) });
}
