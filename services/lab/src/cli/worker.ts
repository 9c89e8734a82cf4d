import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { defaultWorkerName, startWorker } from '../cluster/worker.js';
import { EXIT, UsageError, intOption } from './usage.js';

export const WORKER_HELP = `nestlab worker [--stacks K] [--nats-url URL[,URL…]] [--name N] [--dir D] [--ack-wait-ms MS]

Hosts K independent stacks on this machine (each a full fleet: its own
nats-server with a user per service, stack token <name>-k<i>, data directory
and admin ports) and runs sweep items for them from the cluster's JetStream
work queue, one item per stack at a time, until Ctrl-C. A worker that dies
loses nothing: the items it had not acknowledged go to another worker after
the ack wait. Run reports go to .nestlab/runs/<stack>/.

  --stacks K          stacks to host (default 1)
  --nats-url URLS     the cluster's nodes, comma-separated (default $NATS_URL or nats://127.0.0.1:4222)
  --name N            this worker's name in results and stack tokens (default <host>-<pid>)
  --dir D             where stacks keep data and logs (default .nestlab/workers)
  --ack-wait-ms MS    how long an unacknowledged item waits before another worker gets it
                      (default 20000; takes effect only when this worker creates the queue)

The work seat's credentials come from NESTLAB_WORK_USER / NESTLAB_WORK_PASS
(see \`nestlab nats-config\`).`;

export async function worker(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      stacks: { type: 'string' },
      'nats-url': { type: 'string' },
      name: { type: 'string' },
      dir: { type: 'string' },
      'ack-wait-ms': { type: 'string' },
    },
    strict: true,
  });
  const name = values.name ?? defaultWorkerName();
  if (!/^[A-Za-z0-9_-]{1,40}$/.test(name))
    throw new UsageError(`--name must be 1-40 of A-Z a-z 0-9 _ -, got ${JSON.stringify(name)}`);
  const progress = (line: string) => process.stderr.write(`nestlab worker ${name}: ${line}\n`);
  const w = await startWorker({
    urls: values['nats-url'] ?? process.env['NATS_URL'] ?? 'nats://127.0.0.1:4222',
    stacks: intOption('stacks', values.stacks, 1, 1, 64),
    name,
    root: values.dir ?? join(process.cwd(), '.nestlab', 'workers'),
    ...(values['ack-wait-ms']
      ? { ackWaitMs: intOption('ack-wait-ms', values['ack-wait-ms'], 20_000, 1000, 3_600_000) }
      : {}),
    progress,
  });
  progress(`taking work for ${w.stacks.join(', ')}`);
  await new Promise<void>((resolve) => {
    for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => resolve());
  });
  progress('stopping: running items go back to the queue');
  await w.stop();
  return EXIT.ok;
}
