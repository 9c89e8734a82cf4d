// `nestlab nats-config`: the config of every node of a NATS cluster shared
// by many stacks, with a user per service per stack (a stack's users may
// touch only `nestlab.<stack>.…` and their own inboxes, the matrix of
// deploy/nats/nats.conf with the stack named) and the work seat for workers
// and sweeps (the JetStream work queue, no stack's subjects).
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  authorizationConfig,
  clusterNodeConfig,
  generateStackAuth,
  generateWorkSeat,
  type NatsCredential,
  type NatsRole,
} from '@nestlab/nats-runner';

export interface NatsConfigSpec {
  stacks: readonly string[];
  /** Host names (or addresses) of the nodes, as the other nodes reach them. */
  nodes: readonly string[];
  clientPort?: number;
  clusterPort?: number;
  storeDir?: string;
}

export interface NatsConfigOutput {
  nodes: { name: string; host: string; config: string }[];
  credentials: {
    work: NatsCredential;
    stacks: Record<string, Record<NatsRole, NatsCredential>>;
  };
}

export function generateNatsConfig(spec: NatsConfigSpec): NatsConfigOutput {
  const stacks = spec.stacks.map((s) => generateStackAuth(s));
  const work = generateWorkSeat();
  const clusterPort = spec.clusterPort ?? 6222;
  const routes = spec.nodes.map((h) => `nats://${h}:${clusterPort}`);
  const auth = authorizationConfig(stacks, [work]);
  return {
    nodes: spec.nodes.map((host, i) => ({
      name: `n${i + 1}`,
      host,
      config:
        `# nats-server config for node n${i + 1} (${host}), written by \`nestlab nats-config\`.\n` +
        `listen: "0.0.0.0:${spec.clientPort ?? 4222}"\n` +
        clusterNodeConfig({
          name: `n${i + 1}`,
          clusterListen: `0.0.0.0:${clusterPort}`,
          routes,
          storeDir: spec.storeDir ?? '/data/jetstream',
        }) +
        auth,
    })),
    credentials: {
      work: { user: work.user, pass: work.pass },
      stacks: Object.fromEntries(stacks.map((s) => [s.stack, s.credentials])),
    },
  };
}

/** Writes `<node>.conf` per node and `credentials.json`, both 0600 (they hold passwords). */
export function writeNatsConfig(out: NatsConfigOutput, dir: string): string[] {
  mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  const write = (name: string, text: string) => {
    const f = join(dir, name);
    writeFileSync(f, text, { mode: 0o600 });
    chmodSync(f, 0o600);
    files.push(f);
  };
  for (const n of out.nodes) write(`${n.name}.conf`, n.config);
  write('credentials.json', `${JSON.stringify(out.credentials, null, 2)}\n`);
  return files;
}
