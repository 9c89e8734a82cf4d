// Test harness: runs a service's compiled server.js as its own process against
// a test nats-server, exactly as `nestlab up` does, and waits for /readyz.
//
// Every child is registered the moment it is spawned, before its readiness
// wait: a `before` hook that times out under load never hands its `after` the
// handle, yet `stopSpawned()` still reaches the child, and so does the exit
// of the test process. The child also watches its stdin pipe (service-kit's
// parent watch), so it exits by itself if the test process is SIGKILLed.
import { spawn, type ChildProcess } from 'node:child_process';
import { freePort } from './free-port.js';
import { waitFor } from './wait.js';

export interface SpawnedService {
  readonly adminUrl: string;
  readonly pid: number | undefined;
  /** SIGTERM, then SIGKILL after 5 s; resolves with the exit code or signal. */
  stop(): Promise<number | string>;
  stderr(): string;
}

/** Set in a child's env to make service-kit's `watchParent` watch its stdin (parent-watch.ts). */
const PARENT_WATCH = { NESTLAB_PARENT_WATCH: 'stdin' };

const live = new Map<ChildProcess, () => Promise<number | string>>();
let exitHookInstalled = false;

function register(child: ChildProcess, stop: () => Promise<number | string>): void {
  live.set(child, stop);
  child.once('exit', () => live.delete(child));
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last resort, synchronous: whatever a test left running dies with it.
  process.once('exit', () => {
    for (const c of live.keys()) c.kill('SIGKILL');
  });
}

/** Stops every service this process spawned that is still running (for `after` hooks). */
export async function stopSpawned(): Promise<void> {
  await Promise.all([...live.values()].map((stop) => stop()));
}

/** How many spawned services are still running (tests of the harness itself). */
export const spawnedCount = (): number => live.size;

/** How often a service is relaunched when another process took its free port first. */
const PORT_ATTEMPTS = 4;

export async function spawnService(
  entry: string,
  natsUrl: string,
  stack: string,
  env: NodeJS.ProcessEnv = {},
): Promise<SpawnedService> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await spawnOnce(entry, natsUrl, stack, env);
    } catch (err) {
      // A free port is free when asked, not when bound: a concurrent test may win it.
      if (!(err instanceof PortTaken) || attempt >= PORT_ATTEMPTS) throw err;
    }
  }
}

class PortTaken extends Error {}

async function spawnOnce(
  entry: string,
  natsUrl: string,
  stack: string,
  env: NodeJS.ProcessEnv,
): Promise<SpawnedService> {
  const port = await freePort();
  const child = spawn(process.execPath, [entry], {
    env: {
      ...process.env,
      ...PARENT_WATCH,
      NATS_URL: natsUrl,
      NESTLAB_STACK: stack,
      ADMIN_HOST: '127.0.0.1',
      ADMIN_PORT: String(port),
      LOG_LEVEL: 'warn',
      ...env,
    },
    // stdin: a pipe never written, closed by the kernel when this process ends.
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr?.on('data', (c: Buffer) => (err = (err + c.toString('utf8')).slice(-4000)));
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')),
  );
  const adminUrl = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    const how = await exited;
    clearTimeout(timer);
    return how;
  };
  register(child, stop);
  try {
    await waitFor(`${entry} ready`, async () => {
      if (child.exitCode !== null) throw new Error(`exited ${child.exitCode}: ${err}`);
      const res = await fetch(`${adminUrl}/readyz`).catch(() => undefined);
      if (res?.status !== 200) return undefined;
      // Only our child counts, not another process that won the port.
      const body = (await res.json().catch(() => ({}))) as { pid?: unknown };
      return body.pid === child.pid ? true : undefined;
    });
  } catch (e) {
    await stop();
    if (/EADDRINUSE/.test(err)) throw new PortTaken(`port ${port} taken: ${err}`, { cause: e });
    throw e;
  }
  return { adminUrl, pid: child.pid, stop, stderr: () => err };
}
