import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import {
  DOMAIN_FAULT_KINDS,
  FaultPlan,
  validator,
  type DomainFaultKind,
  type DomainFaultRequest,
  type FaultRule,
} from '@nestlab/protocol';
import {
  DOMAIN_FAULT_OWNER,
  FAULT_SERVICES,
  addFleetRules,
  clearFleetPlan,
  injectDomainFault,
  readFleetFaults,
} from '../faults/fleet-faults.js';
import { withFleet } from './session.js';
import { EXIT, UsageError, intOption } from './usage.js';

export const FAULTS_HELP = `nestlab faults list|add|clear|inject [--json] [--nats-url URL] [--stack ID]

Transport faults on a running fleet (\`nestlab up\`), applied where each
service receives messages: drop, delay, duplicate, reorder, corrupt; and
domain faults armed on the service that owns the state.

  nestlab faults list [--json]             the plan, the faults injected so far and the domain faults fired, per service
  nestlab faults add --file F              add the rules of a fault file (YAML: {seed, rules: [...]})
  nestlab faults add --subject P --action A [--probability X] [--delay-ms N] [--id ID] [--seed S]
  nestlab faults clear                     remove every rule
  nestlab faults inject <service> <kind> [--count N] [--after N] [--delay-ms N]
                                           arm a domain fault: ${DOMAIN_FAULT_KINDS.join(', ')}
                                           (l0: device-reset, lose-msi, lose-doorbell; iommu: stale-iotlb,
                                           unmap-in-flight; xen: p2m-change, lose-evtchn)

A rule: {id, subject (NATS pattern, e.g. nestlab.s1.l0.dev.*.notify), action,
probability?, after?, limit?, delayMs?, jitterMs?, bytes?}. Decisions come from
a PRNG seeded by the plan's seed and the rule id: the same seed and message
order inject the same faults.`;

const SERVICES = FAULT_SERVICES;
const plan = validator(FaultPlan);

function ruleFromFlags(v: Record<string, string | boolean | undefined>): FaultRule {
  const rule: Record<string, unknown> = {
    id: v['id'] ?? `rule-${Date.now().toString(36)}`,
    subject: v['subject'],
    action: v['action'],
  };
  if (v['probability'] !== undefined) rule['probability'] = Number(v['probability']);
  if (v['delay-ms'] !== undefined) rule['delayMs'] = Number(v['delay-ms']);
  const checked = plan.errorsOf({ seed: 0, rules: [rule] });
  const first = [...checked][0];
  if (first) throw new UsageError(`bad rule: ${first.path || '(rule)'}: ${first.message}`);
  return rule as FaultRule;
}

/** `inject <service> <kind>` and its options, checked before any fleet is touched. */
function injectionFrom(
  positionals: string[],
  v: Record<string, string | boolean | undefined>,
): { service: (typeof SERVICES)[number]; req: DomainFaultRequest } {
  const [, service, kind] = positionals;
  if (positionals.length !== 3 || !service || !kind)
    throw new UsageError('faults inject takes <service> <kind> (see `nestlab help faults`)');
  if (!(SERVICES as readonly string[]).includes(service))
    throw new UsageError(
      `unknown service ${JSON.stringify(service)}; one of ${SERVICES.join(', ')}`,
    );
  if (!(DOMAIN_FAULT_KINDS as readonly string[]).includes(kind))
    throw new UsageError(
      `unknown domain fault ${JSON.stringify(kind)}; one of ${DOMAIN_FAULT_KINDS.join(', ')}`,
    );
  const owner = DOMAIN_FAULT_OWNER[kind as DomainFaultKind];
  if (owner !== service) throw new UsageError(`${kind} is a fault of ${owner}, not of ${service}`);
  const num = (name: string, min: number, max: number) => {
    const raw = v[name];
    return typeof raw === 'string' ? intOption(name, raw, 0, min, max) : undefined;
  };
  const count = num('count', 1, 1_000_000);
  const after = num('after', 0, 1e9);
  const delayMs = num('delay-ms', 0, 60_000);
  return {
    service: service as (typeof SERVICES)[number],
    req: {
      kind: kind as DomainFaultKind,
      ...(count === undefined ? {} : { count }),
      ...(after === undefined ? {} : { after }),
      ...(delayMs === undefined ? {} : { delayMs }),
    },
  };
}

export function loadFaultFile(path: string): FaultPlan {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new UsageError(`${path}: ${(err as Error).message.split('\n')[0]}`);
  }
  const first = [...plan.errorsOf(doc)][0];
  if (first)
    throw new UsageError(
      `${path}: ${first.path.replace(/^\//, '').replace(/\//g, '.') || '(root)'}: ${first.message}`,
    );
  return doc as FaultPlan;
}

export async function faults(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      json: { type: 'boolean' },
      file: { type: 'string' },
      subject: { type: 'string' },
      action: { type: 'string' },
      probability: { type: 'string' },
      'delay-ms': { type: 'string' },
      id: { type: 'string' },
      seed: { type: 'string' },
      count: { type: 'string' },
      after: { type: 'string' },
      'nats-url': { type: 'string' },
      stack: { type: 'string' },
    },
    strict: true,
    allowPositionals: true,
  });
  const verb = positionals[0];
  if (!verb || !['list', 'add', 'clear', 'inject'].includes(verb)) {
    throw new UsageError(
      'faults takes one of: list, add, clear, inject (see `nestlab help faults`)',
    );
  }
  if (verb !== 'inject' && positionals.length !== 1)
    throw new UsageError(`faults ${verb} takes no further words (see \`nestlab help faults\`)`);
  const injection = verb === 'inject' ? injectionFrom(positionals, values) : null;
  const adding = verb === 'add' ? (values.file ? loadFaultFile(values.file) : null) : null;
  const rule = verb === 'add' && !values.file ? ruleFromFlags(values) : null;
  const session = {
    ...(values['nats-url'] ? { natsUrl: values['nats-url'] } : {}),
    ...(values.stack ? { stack: values.stack } : {}),
    progress: (line: string) => process.stderr.write(`nestlab: ${line}\n`),
  };
  if (!session.natsUrl) {
    const { runningFleet } = await import('../fleet/registry.js');
    if (!runningFleet())
      throw new UsageError('no running fleet: start `nestlab up` or pass --nats-url');
  }
  return withFleet(session, async (bus) => {
    if (verb === 'clear') await clearFleetPlan(bus);
    if (injection) {
      const armed = await injectDomainFault(bus, injection.service, injection.req);
      process.stderr.write(
        `nestlab: ${injection.req.kind} armed on ${injection.service}${armed ? ` (${armed} events to hit)` : ' (fired at once)'}\n`,
      );
    }
    if (verb === 'add') {
      const extra = adding ? adding.rules : rule ? [rule] : [];
      const seed = adding?.seed ?? (values.seed === undefined ? undefined : Number(values.seed));
      await addFleetRules(bus, extra, seed);
    }
    const state = await readFleetFaults(bus);
    if (values.json) process.stdout.write(`${JSON.stringify({ services: state }, null, 2)}\n`);
    else {
      const rules = state.l0?.plan.rules ?? [];
      process.stdout.write(
        rules.length ? `seed ${state.l0?.plan.seed}, ${rules.length} rules:\n` : 'no fault rules\n',
      );
      for (const r of rules)
        process.stdout.write(
          `  ${r.id.padEnd(20)} ${r.action.padEnd(9)} ${r.subject}${r.probability === undefined ? '' : ` p=${r.probability}`}\n`,
        );
      for (const s of SERVICES) {
        const n = state[s]?.injected.length ?? 0;
        if (n) process.stdout.write(`  injected in ${s}: ${n}\n`);
      }
      const domain = SERVICES.flatMap((s) => (state[s]?.domain ?? []).map((e) => ({ s, e })));
      process.stdout.write(
        domain.length ? `domain faults fired: ${domain.length}\n` : 'no domain faults fired\n',
      );
      for (const { s, e } of domain)
        process.stdout.write(`  ${s.padEnd(6)} ${e.kind.padEnd(16)} #${e.n} ${e.detail}\n`);
    }
    return EXIT.ok;
  });
}
