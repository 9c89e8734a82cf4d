// A NATS cluster with JetStream: the config of each node (for `nestlab
// nats-config` on real machines) and a runner that starts N nodes routed to
// each other on loopback (for tests). Work items and sweep results live in
// JetStream streams replicated over the nodes, so losing one node loses
// nothing while a quorum stays up.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { ExtraSeat, NatsPermissions } from './auth.js';
import { startNatsServer, type NatsServerHandle } from './nats-server.js';

export interface ClusterNodeSpec {
  /** Unique per node (JetStream's server_name). */
  readonly name: string;
  /** Where this node listens for routes, e.g. `0.0.0.0:6222`. */
  readonly clusterListen: string;
  /** Every node's route URL (its own is ignored by nats-server). */
  readonly routes: readonly string[];
  readonly storeDir: string;
  readonly clusterName?: string;
}

/** The cluster and JetStream part of one node's config. */
export function clusterNodeConfig(n: ClusterNodeSpec): string {
  return [
    `server_name: ${JSON.stringify(n.name)}`,
    `jetstream { store_dir: ${JSON.stringify(n.storeDir)} }`,
    'cluster {',
    `  name: ${JSON.stringify(n.clusterName ?? 'nestlab')}`,
    `  listen: ${JSON.stringify(n.clusterListen)}`,
    `  routes: [${n.routes.map((r) => JSON.stringify(r)).join(', ')}]`,
    '}',
    '',
  ].join('\n');
}

/**
 * The work seat: what `nestlab worker` and `nestlab sweep` need on the
 * cluster (JetStream's API, acks, the sweep subjects) and nothing of any
 * stack's `nestlab.<stack>.…` subjects. Its inboxes are its own prefix.
 */
export const WORK_PERMISSIONS: NatsPermissions = {
  publish: ['$JS.API.>', '$JS.ACK.>', '$JS.FC.>', '$KV.>', 'nestlab-sweep.>', '_INBOX_WORK.>'],
  subscribe: ['nestlab-sweep.>', '_INBOX_WORK.>'],
};
export const WORK_INBOX_PREFIX = '_INBOX_WORK';

export function generateWorkSeat(): ExtraSeat {
  return {
    user: 'work',
    pass: randomBytes(18).toString('base64url'),
    permissions: WORK_PERMISSIONS,
  };
}

/** A port the kernel says is free on loopback right now. */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

export interface NatsClusterHandle {
  readonly nodes: readonly NatsServerHandle[];
  /** Every node's client URL, comma-separated (what NATS_URL and --nats-url take). */
  readonly urls: string;
  /** Stops every node and removes their JetStream stores. */
  stop(): Promise<void>;
}

export interface NatsClusterOptions {
  nodes?: number;
  /** Extra config for every node (e.g. an authorization block). */
  config?: string;
}

/** Starts N nats-server nodes on free loopback ports, routed to each other, JetStream on. */
export async function startNatsCluster(opts: NatsClusterOptions = {}): Promise<NatsClusterHandle> {
  const count = opts.nodes ?? 3;
  const dir = mkdtempSync(join(tmpdir(), 'nestlab-cluster-'));
  const clientPorts: number[] = [];
  const routePorts: number[] = [];
  for (let i = 0; i < count; i++) {
    clientPorts.push(await freeLoopbackPort());
    routePorts.push(await freeLoopbackPort());
  }
  const routes = routePorts.map((p) => `nats://127.0.0.1:${p}`);
  const nodes: NatsServerHandle[] = [];
  const stop = async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    // All at once: a node waits for its routes only after it is ready for clients.
    const started = await Promise.all(
      clientPorts.map((port, i) => {
        const storeDir = join(dir, `n${i + 1}`);
        mkdirSync(storeDir, { recursive: true });
        const config =
          clusterNodeConfig({
            name: `n${i + 1}`,
            clusterListen: `127.0.0.1:${routePorts[i]}`,
            routes,
            storeDir,
          }) + (opts.config ?? '');
        return startNatsServer({ port, config }).then((h) => (nodes.push(h), h));
      }),
    );
    const byPort = [...started].sort(
      (a, b) => clientPorts.indexOf(a.port) - clientPorts.indexOf(b.port),
    );
    return { nodes: byPort, urls: byPort.map((n) => n.url).join(','), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
