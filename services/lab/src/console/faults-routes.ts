import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifySchemaValidationError } from 'fastify';
import { DomainFaultRequest, FaultRule, RemoteError } from '@nestlab/protocol';
import type { Bus } from '@nestlab/service-kit';
import {
  FAULT_SERVICES,
  addFleetRules,
  clearFleetPlan,
  injectDomainFault,
  readFleetFaults,
} from '../faults/fleet-faults.js';

/** An injection names the service to arm and the domain fault, in one body. */
const InjectRequest = Type.Composite(
  [
    Type.Object({ service: Type.Union(FAULT_SERVICES.map((s) => Type.Literal(s))) }),
    DomainFaultRequest,
  ],
  { additionalProperties: false },
);

/** What the console shows of each service's faults: the plan once, counts and the newest events. */
async function panelState(bus: Bus) {
  const all = await readFleetFaults(bus);
  return {
    plan: all.l0.plan,
    services: Object.fromEntries(
      FAULT_SERVICES.map((s) => [
        s,
        {
          injected: all[s].injected.length,
          dropped: all[s].dropped,
          recent: all[s].injected.slice(-10),
          domain: all[s].domain.slice(-20),
        },
      ]),
    ),
  };
}

function refuse(reply: FastifyReply, code: string, message: string) {
  return reply.code(400).send({ code, message });
}

/** The route schema's first complaint, as `path: message`. */
function firstError(errors: readonly FastifySchemaValidationError[]): string {
  const e = errors[0];
  const missing = e?.params['missingProperty'];
  const path = e?.instancePath || (typeof missing === 'string' ? `/${missing}` : '(body)');
  return `${path}: ${e?.message ?? 'does not match the schema'}`;
}

/** The faults panel's API: read, add a transport rule, clear, arm a domain fault. */
export function registerFaultRoutes(
  fastify: FastifyInstance,
  fleetBus: () => Bus | undefined,
): void {
  // Bodies are checked by the route schemas (the protocol's own TypeBox
  // schemas); a refusal keeps the panel's stable codes.
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const withBus = async (reply: FastifyReply, work: (bus: Bus) => Promise<unknown>) => {
    const bus = fleetBus();
    if (!bus)
      return reply
        .code(503)
        .send({ code: 'NO_FLEET', message: 'this console is not attached to a fleet' });
    return work(bus);
  };

  app.get('/api/faults', async (_req, reply) => withBus(reply, panelState));

  app.post(
    '/api/faults/rules',
    { schema: { body: FaultRule }, attachValidation: true },
    async (req, reply) => {
      if (req.validationError)
        return refuse(reply, 'FAULT_RULE_INVALID', firstError(req.validationError.validation));
      const rule = req.body;
      return withBus(reply, async (bus) => {
        await addFleetRules(bus, [rule]);
        return panelState(bus);
      });
    },
  );

  app.post('/api/faults/clear', async (_req, reply) =>
    withBus(reply, async (bus) => {
      await clearFleetPlan(bus);
      return panelState(bus);
    }),
  );

  app.post(
    '/api/faults/inject',
    { schema: { body: InjectRequest }, attachValidation: true },
    async (req, reply) => {
      const errors = req.validationError?.validation;
      if (errors) {
        const aboutService = firstError(errors).startsWith('/service');
        return aboutService
          ? refuse(reply, 'FAULT_SERVICE_INVALID', `service must be one of ${FAULT_SERVICES}`)
          : refuse(reply, 'DOMAIN_FAULT_INVALID', firstError(errors));
      }
      const { service, ...fault } = req.body;
      return withBus(reply, async (bus) => {
        try {
          return { armed: await injectDomainFault(bus, service, fault) };
        } catch (err) {
          // The service refused (not its kind, or not applicable now): the user's input, not a crash.
          if (err instanceof RemoteError && err.kind === 'input')
            return reply.code(422).send({ code: err.code, message: err.message });
          throw err;
        }
      });
    },
  );
}
