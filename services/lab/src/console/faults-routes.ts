import type { FastifyInstance, FastifyReply } from 'fastify';
import { DomainFaultRequest, FaultRule, RemoteError, validator } from '@nestlab/protocol';
import type { Bus } from '@nestlab/service-kit';
import {
  FAULT_SERVICES,
  addFleetRules,
  clearFleetPlan,
  injectDomainFault,
  readFleetFaults,
  type FaultService,
} from '../faults/fleet-faults.js';

const ruleCheck = validator(FaultRule);
const domainCheck = validator(DomainFaultRequest);

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

function firstError(v: ReturnType<typeof validator>, body: unknown): string {
  const e = [...v.errorsOf(body)][0];
  return `${e?.path || '(body)'}: ${e?.message ?? 'does not match the schema'}`;
}

/** The faults panel's API: read, add a transport rule, clear, arm a domain fault. */
export function registerFaultRoutes(app: FastifyInstance, fleetBus: () => Bus | undefined): void {
  const withBus = async (reply: FastifyReply, work: (bus: Bus) => Promise<unknown>) => {
    const bus = fleetBus();
    if (!bus)
      return reply
        .code(503)
        .send({ code: 'NO_FLEET', message: 'this console is not attached to a fleet' });
    return work(bus);
  };

  app.get('/api/faults', async (_req, reply) => withBus(reply, panelState));

  app.post<{ Body: unknown }>('/api/faults/rules', async (req, reply) => {
    if (!ruleCheck.check(req.body))
      return refuse(reply, 'FAULT_RULE_INVALID', firstError(ruleCheck, req.body));
    const rule = req.body;
    return withBus(reply, async (bus) => {
      await addFleetRules(bus, [rule]);
      return panelState(bus);
    });
  });

  app.post('/api/faults/clear', async (_req, reply) =>
    withBus(reply, async (bus) => {
      await clearFleetPlan(bus);
      return panelState(bus);
    }),
  );

  app.post<{ Body: { service?: unknown } & Record<string, unknown> }>(
    '/api/faults/inject',
    async (req, reply) => {
      const { service, ...fault } = req.body ?? {};
      if (!FAULT_SERVICES.includes(service as FaultService))
        return refuse(reply, 'FAULT_SERVICE_INVALID', `service must be one of ${FAULT_SERVICES}`);
      if (!domainCheck.check(fault))
        return refuse(reply, 'DOMAIN_FAULT_INVALID', firstError(domainCheck, fault));
      return withBus(reply, async (bus) => {
        try {
          return { armed: await injectDomainFault(bus, service as FaultService, fault) };
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
