// The console's view of real-guest runs (`nestlab reference --device nestlab`):
// read from the run store on each request, so a run saved by the CLI in
// another shell shows up without restarting the console.
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { SCENARIO_ID } from '../run/real-guest-run.js';
import { lastRealGuestRun, realGuestRuns, RunStoreError } from '../run/store.js';

export function registerRealGuestRoutes(app: FastifyInstance): void {
  app.get('/api/real-guest-runs', async () => realGuestRuns());
  app
    .withTypeProvider<TypeBoxTypeProvider>()
    .get(
      '/api/real-guest-runs/:scenario',
      { schema: { params: Type.Object({ scenario: SCENARIO_ID }) } },
      async (req, reply) => {
        let run;
        try {
          run = lastRealGuestRun(req.params.scenario);
        } catch (err) {
          if (!(err instanceof RunStoreError)) throw err;
          return reply.code(422).send({
            code: err.code,
            message: `the stored real-guest run of ${req.params.scenario} is not readable: ${err.message}`,
          });
        }
        if (!run)
          return reply.code(404).send({
            code: 'REAL_GUEST_RUN_NOT_FOUND',
            message: `no real-guest run of ${req.params.scenario}: run \`nestlab reference --device nestlab ${req.params.scenario}\``,
          });
        return run;
      },
    );
}
