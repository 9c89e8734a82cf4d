import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { generateNatsConfig, writeNatsConfig } from '../cluster/nats-config.js';
import { EXIT, UsageError, intOption } from './usage.js';

export const NATS_CONFIG_HELP = `nestlab nats-config --stacks <N | s1,s2,…> [--nodes h1,h2,h3] [--out DIR]

Writes the config of each node of a NATS cluster (routes, JetStream) shared by
several stacks, and credentials.json with every password (both 0600). Each
stack gets a user per service whose permissions name the stack: a stack's
services can neither read nor write another stack's subjects. The work seat
(user "work": NESTLAB_WORK_USER / NESTLAB_WORK_PASS for \`nestlab worker\`
and \`nestlab sweep\`) reaches the sweep's JetStream queue and no stack.

  --stacks N | LIST   how many stacks (named s1…sN), or their names
  --nodes LIST        the nodes' host names as the other nodes reach them (default nats-1,nats-2,nats-3)
  --client-port P     client port of every node (default 4222)
  --cluster-port P    route port of every node (default 6222)
  --out DIR           where to write (default .nestlab/nats-cluster)

Start each node with \`nats-server -c DIR/n<i>.conf\`.`;

export async function natsConfig(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      stacks: { type: 'string' },
      nodes: { type: 'string' },
      'client-port': { type: 'string' },
      'cluster-port': { type: 'string' },
      out: { type: 'string' },
    },
    strict: true,
  });
  if (!values.stacks) throw new UsageError('nats-config needs --stacks N or --stacks s1,s2,…');
  const stacks = /^\d+$/.test(values.stacks)
    ? Array.from({ length: intOption('stacks', values.stacks, 1, 1, 1000) }, (_, i) => `s${i + 1}`)
    : values.stacks.split(',');
  if (new Set(stacks).size !== stacks.length)
    throw new UsageError(`--stacks names a stack twice: ${values.stacks}`);
  const nodes = (values.nodes ?? 'nats-1,nats-2,nats-3').split(',').filter(Boolean);
  let out;
  try {
    out = generateNatsConfig({
      stacks,
      nodes,
      clientPort: intOption('client-port', values['client-port'], 4222, 1, 65535),
      clusterPort: intOption('cluster-port', values['cluster-port'], 6222, 1, 65535),
    });
  } catch (err) {
    if (err instanceof RangeError) throw new UsageError(err.message);
    throw err;
  }
  const dir = values.out ?? join(process.cwd(), '.nestlab', 'nats-cluster');
  for (const f of writeNatsConfig(out, dir)) process.stdout.write(`${f}\n`);
  return EXIT.ok;
}
