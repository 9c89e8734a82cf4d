import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { FaultControl, FaultPlan, validator, type FaultRule } from '@nestlab/protocol';
import type { Bus } from '@nestlab/service-kit';
import { withFleet } from './session.js';
import { EXIT, UsageError } from './usage.js';

export const FAULTS_HELP = `nestlab faults list|add|clear [--json] [--nats-url URL] [--stack ID]

Transport faults on a running fleet (\`nestlab up\`), applied where each
service receives messages: drop, delay, duplicate, reorder, corrupt.

  nestlab faults list [--json]             the plan and the faults injected so far, per service
  nestlab faults add --file F              add the rules of a fault file (YAML: {seed, rules: [...]})
  nestlab faults add --subject P --action A [--probability X] [--delay-ms N] [--id ID] [--seed S]
  nestlab faults clear                     remove every rule

A rule: {id, subject (NATS pattern, e.g. nestlab.s1.l0.dev.*.notify), action,
probability?, after?, limit?, delayMs?, jitterMs?, bytes?}. Decisions come from
a PRNG seeded by the plan's seed and the rule id: the same seed and message
order inject the same faults.`;

const SERVICES = ['l0', 'xen', 'dom0', 'iommu'] as const;
const plan = validator(FaultPlan);

async function current(bus: Bus) {
  const out: Record<string, Awaited<ReturnType<typeof fetchOne>>> = {};
  for (const s of SERVICES) out[s] = await fetchOne(bus, s);
  return out;
}
async function fetchOne(bus: Bus, s: (typeof SERVICES)[number]) {
  return (await bus.request(FaultControl[s].list, {})).head;
}
async function setAll(bus: Bus, p: FaultPlan): Promise<void> {
  for (const s of SERVICES) await bus.request(FaultControl[s].set, p);
}

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
      'nats-url': { type: 'string' },
      stack: { type: 'string' },
    },
    strict: true,
    allowPositionals: true,
  });
  const verb = positionals[0];
  if (!verb || !['list', 'add', 'clear'].includes(verb) || positionals.length !== 1) {
    throw new UsageError('faults takes one of: list, add, clear (see `nestlab help faults`)');
  }
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
    if (verb === 'clear') await setAll(bus, { seed: 0, rules: [] });
    if (verb === 'add') {
      const before = (await fetchOne(bus, 'l0')).plan;
      const extra = adding ? adding.rules : rule ? [rule] : [];
      const ids = new Set(extra.map((r) => r.id));
      const seed = adding?.seed ?? (values.seed === undefined ? before.seed : Number(values.seed));
      await setAll(bus, { seed, rules: [...before.rules.filter((r) => !ids.has(r.id)), ...extra] });
    }
    const state = await current(bus);
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
    }
    return EXIT.ok;
  });
}
