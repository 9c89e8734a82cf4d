import { mkdirSync } from 'node:fs';
import {
  authorizationConfig,
  generateStackAuth,
  startNatsServer,
  type NatsCredential,
  type NatsServerHandle,
  type StackAuth,
} from '@nestlab/nats-runner';
import { spawnService, stopProcess, type ServiceProcess } from './child.js';
import { anyFreePort, portIsFree } from './ports.js';
import { fleetServices } from './services.js';
import { onTeardown } from './teardown.js';

export interface FleetOptions {
  /** Use this NATS instead of starting one. */
  natsUrl?: string;
  /** Port for the nats-server we start; default 4222, or any free one if taken; 0 = any. */
  natsPort?: number;
  stack?: string;
  /** First admin port; services take the next ones. 0 = any free ports. */
  adminBasePort?: number;
  logDir: string;
  env?: NodeJS.ProcessEnv;
  readyTimeoutMs?: number;
  onProgress?: (line: string) => void;
  /**
   * Per-service NATS users on the nats-server we start: each service and the
   * lab get their own password and only their stack's subjects (the matrix of
   * deploy/nats/nats.conf). Ignored with `natsUrl`: that server has its own.
   */
  auth?: boolean;
  /** Options for the services' node processes (e.g. the bench's --cpu-prof). */
  nodeArgs?: readonly string[];
}

export interface Fleet {
  readonly natsUrl: string;
  readonly stack: string;
  readonly services: readonly ServiceProcess[];
  readonly nats: NatsServerHandle | null;
  /** Every seat's credentials when started with `auth`, else null. */
  readonly auth: StackAuth | null;
  /** The lab's own seat (CLI, console) on this fleet's NATS, when started with `auth`. */
  readonly labAuth: NatsCredential | null;
  /** Stops every service (SIGTERM) and then NATS; returns each service's exit. */
  stop(): Promise<Record<string, number | string>>;
  /** SIGKILLs one service (by name or token), as a crash would; resolves once it has exited. */
  kill(service: string): Promise<number | string>;
  /**
   * Starts a killed service again with the same env, admin port and log file
   * (appended); resolves once it is ready. It gets no configuration from the
   * lab: what it had, it must restore by itself.
   */
  respawn(service: string): Promise<ServiceProcess>;
}

/** A service busy with a job may not heed SIGTERM at once; on a stop signal it gets this long. */
const HURRIED_GRACE_MS = 2000;
/** Under a loaded machine a service can take well over 20 s to start. */
const READY_TIMEOUT_MS = 60_000;
/** How often a service on an any-free admin port is relaunched when another process took the port. */
const PORT_ATTEMPTS = 4;

export class FleetError extends Error {
  override readonly name = 'FleetError';
  constructor(
    readonly code:
      | 'NATS_START_FAILED'
      | 'SERVICE_EXITED'
      | 'SERVICE_NOT_READY'
      | 'UNKNOWN_SERVICE'
      | 'SERVICE_RUNNING',
    message: string,
  ) {
    super(message);
  }
}

/** Starts nats-server (unless given one) and the four services; resolves when all are ready. */
export async function startFleet(opts: FleetOptions): Promise<Fleet> {
  const progress = opts.onProgress ?? (() => undefined);
  const stack = opts.stack ?? 's1';
  mkdirSync(opts.logDir, { recursive: true });

  let nats: NatsServerHandle | null = null;
  let natsUrl = opts.natsUrl;
  const auth = opts.auth && !natsUrl ? generateStackAuth(stack) : null;
  if (!natsUrl) {
    // 0 = any free port (the server picks one); otherwise the wanted port if it is free.
    const wanted = opts.natsPort ?? 4222;
    const port = wanted === 0 || !(await portIsFree(wanted)) ? undefined : wanted;
    try {
      nats = await startNatsServer({
        ...(port === undefined ? {} : { port }),
        ...(auth ? { config: authorizationConfig([auth]) } : {}),
      });
    } catch (err) {
      throw new FleetError('NATS_START_FAILED', (err as Error).message);
    }
    natsUrl = nats.url;
    progress(`nats-server ready at ${natsUrl}${auth ? ' (a user per service)' : ''}`);
  }

  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...opts.env,
    NATS_URL: natsUrl,
    NESTLAB_STACK: stack,
  };
  const services: ServiceProcess[] = [];
  /** How each service was started, so a respawn repeats it exactly. */
  const launches = new Map<string, { env: NodeJS.ProcessEnv; port: number }>();
  let stopped: Promise<Record<string, number | string>> | undefined;
  /** Sequentially, dom0 first, each with its grace; `hurry`: all at once, a short grace. */
  const stopAll = (hurry: boolean) =>
    (stopped ??= (async () => {
      forget();
      const exits: Record<string, number | string> = {};
      const order = [...services].reverse();
      if (hurry) {
        const hows = await Promise.all(order.map((p) => stopProcess(p, HURRIED_GRACE_MS)));
        order.forEach((p, i) => (exits[p.service.name] = hows[i]!));
      } else for (const p of order) exits[p.service.name] = await stopProcess(p);
      await nats?.stop();
      return exits;
    })());
  const stop = () => stopAll(false);
  // A stop signal to the lab stops this fleet too, quickly (the CLI's handler runs it).
  const forget = onTeardown(() => stopAll(true));
  const readyMs = opts.readyTimeoutMs ?? READY_TIMEOUT_MS;
  try {
    const base = opts.adminBasePort ?? 7701;
    const all = fleetServices();
    for (const svc of all) {
      const port = base === 0 ? await anyFreePort() : base + svc.portOffset;
      const seat = auth?.credentials[svc.token];
      const svcEnv = seat ? { ...env, NATS_USER: seat.user, NATS_PASS: seat.pass } : env;
      launches.set(svc.name, { env: svcEnv, port });
      services.push(spawnService(svc, svcEnv, port, opts.logDir, opts.nodeArgs));
    }
    await Promise.all(
      all.map(async (svc, i) => {
        // Any free port was free when asked, not when bound: another process may win it
        // meanwhile. The service then exits with EADDRINUSE and gets another port.
        for (let attempt = 1; ; attempt++) {
          try {
            return await waitReady(services[i]!, readyMs, progress);
          } catch (err) {
            const lost = /EADDRINUSE/.test(services[i]!.stderrTail());
            if (base !== 0 || !lost || attempt >= PORT_ATTEMPTS) throw err;
            const how = launches.get(svc.name)!;
            const port = await anyFreePort();
            launches.set(svc.name, { env: how.env, port });
            progress(`${svc.name}: admin port ${how.port} was taken meanwhile; trying ${port}`);
            services[i] = spawnService(svc, how.env, port, opts.logDir, opts.nodeArgs);
          }
        }
      }),
    );
  } catch (err) {
    await stop();
    throw err;
  }
  const indexOf = (service: string) => {
    const i = services.findIndex((p) => p.service.name === service || p.service.token === service);
    if (i < 0)
      throw new FleetError(
        'UNKNOWN_SERVICE',
        `no service ${JSON.stringify(service)} in this fleet (${services.map((p) => p.service.token).join(', ')})`,
      );
    return i;
  };
  const running = (p: ServiceProcess) =>
    p.process.exitCode === null && p.process.signalCode === null;
  const kill = async (service: string) => {
    const p = services[indexOf(service)]!;
    if (running(p)) p.process.kill('SIGKILL');
    const how = await p.exited;
    progress(`${p.service.name} killed (${how})`);
    return how;
  };
  const respawn = async (service: string) => {
    const i = indexOf(service);
    const old = services[i]!;
    if (running(old))
      throw new FleetError(
        'SERVICE_RUNNING',
        `${old.service.name} is still running; kill it first`,
      );
    await old.exited; // its log stream is closed before the new process appends
    const how = launches.get(old.service.name)!;
    const p = spawnService(old.service, how.env, how.port, opts.logDir, opts.nodeArgs);
    services[i] = p;
    await waitReady(p, opts.readyTimeoutMs ?? READY_TIMEOUT_MS, progress);
    return p;
  };
  return {
    natsUrl,
    stack,
    services,
    nats,
    auth,
    labAuth: auth?.credentials.lab ?? null,
    stop,
    kill,
    respawn,
  };
}

async function waitReady(
  p: ServiceProcess,
  timeoutMs: number,
  progress: (l: string) => void,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited: number | string | undefined;
  void p.exited.then((how) => (exited = how));
  while (Date.now() < deadline) {
    if (exited !== undefined) {
      throw new FleetError(
        'SERVICE_EXITED',
        `${p.service.name} exited (${exited}) before it was ready:\n${p.stderrTail() || `see ${p.logFile}`}`,
      );
    }
    try {
      const res = await fetch(`${p.adminUrl}/readyz`);
      // Only our own child counts: another process may listen on a port we were told was free.
      const ours = res.ok && ((await res.json()) as { pid?: unknown }).pid === p.process.pid;
      if (ours) {
        progress(`${p.service.name} ready, admin at ${p.adminUrl}`);
        return;
      }
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new FleetError(
    'SERVICE_NOT_READY',
    `${p.service.name} was not ready within ${timeoutMs} ms (log: ${p.logFile})`,
  );
}
