// Test harness: a real nats-server, some of the services' built servers on it,
// a client connection and (optionally) a data directory they persist into.
// One object made at describe time: `before` starts it, `after` stops it, and
// stop() works however far a timed-out start() got.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/nats-core';
import { startNatsServer, type NatsServerHandle } from '@nestlab/nats-runner';
import type { ServiceToken } from '@nestlab/protocol';
import { sigkill } from './process-control.js';
import { spawnService, stopSpawned, type SpawnedService } from './spawn-service.js';

/** The services a test fleet can run, by their folder under services/. */
export type FleetService = 'l0-hypervisor' | 'xen' | 'iommu' | 'dom0-kernel';

const PING_TOKEN: Record<FleetService, Exclude<ServiceToken, 'lab'>> = {
  'l0-hypervisor': 'l0',
  xen: 'xen',
  iommu: 'iommu',
  'dom0-kernel': 'dom0',
};

/** A service's built server in this monorepo (services/<name>/dist/server.js). */
export const serviceEntry = (name: FleetService): string =>
  fileURLToPath(new URL(`../../../services/${name}/dist/server.js`, import.meta.url));

export interface TestFleetOptions {
  /** The stack token every service and request uses. */
  stack: string;
  /** Started one at a time in this order: each gets the whole readiness deadline on a busy machine. */
  services: readonly FleetService[];
  /** Give the services a fresh NESTLAB_DATA_DIR (removed on stop), so state survives a restart. */
  dataDir?: boolean;
}

export class TestFleet {
  private natsHandle: NatsServerHandle | undefined;
  private conn: NatsConnection | undefined;
  private dir: string | undefined;
  private readonly running = new Map<FleetService, SpawnedService>();

  constructor(private readonly opts: TestFleetOptions) {}

  get stack(): string {
    return this.opts.stack;
  }
  get nats(): NatsServerHandle {
    return started(this.natsHandle, 'nats');
  }
  get nc(): NatsConnection {
    return started(this.conn, 'nc');
  }
  get dataDir(): string {
    return started(this.dir, 'dataDir (dataDir: true)');
  }
  /** The running process of a service (a new one after restart()). */
  service(name: FleetService): SpawnedService {
    return started(this.running.get(name), name);
  }

  async start(): Promise<void> {
    this.natsHandle = await startNatsServer();
    if (this.opts.dataDir) this.dir = await mkdtemp(join(tmpdir(), `nestlab-${this.opts.stack}-`));
    for (const name of this.opts.services) await this.spawn(name);
    this.conn = await connect({ servers: this.natsHandle.url });
  }

  /** Starts a service (again) on the fleet's NATS and data directory. */
  async spawn(name: FleetService): Promise<SpawnedService> {
    const env = this.dir === undefined ? {} : { NESTLAB_DATA_DIR: this.dir };
    const svc = await spawnService(serviceEntry(name), this.nats.url, this.opts.stack, env);
    this.running.set(name, svc);
    return svc;
  }

  /** SIGKILLs a service found by its Ping pid and waits until the process is gone. */
  async kill(name: FleetService): Promise<void> {
    await sigkill(this.nc, this.opts.stack, PING_TOKEN[name], this.service(name));
    this.running.delete(name);
  }

  /** kill(), then spawn() on the same data directory, as a crash and a supervisor would. */
  async restart(name: FleetService): Promise<SpawnedService> {
    await this.kill(name);
    return this.spawn(name);
  }

  async stop(): Promise<void> {
    await this.conn?.close();
    await Promise.all([...this.running.values()].map((s) => s.stop()));
    // Also any a timed-out start() never handed over (registered at spawn).
    await stopSpawned();
    await this.natsHandle?.stop();
    if (this.dir !== undefined) await rm(this.dir, { recursive: true, force: true });
  }
}

function started<T>(v: T | undefined, what: string): T {
  if (v === undefined) throw new Error(`test fleet: ${what} is not started`);
  return v;
}
