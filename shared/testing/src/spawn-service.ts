// Test harness: runs a service's compiled server.js as its own process against
// a test nats-server, exactly as `nestlab up` does, and waits for /readyz.
import { spawn } from 'node:child_process';
import { freePort } from './free-port.js';
import { waitFor } from './wait.js';

export interface SpawnedService {
  readonly adminUrl: string;
  /** SIGTERM, then SIGKILL after 5 s; resolves with the exit code or signal. */
  stop(): Promise<number | string>;
  stderr(): string;
}

export async function spawnService(
  entry: string,
  natsUrl: string,
  stack: string,
): Promise<SpawnedService> {
  const port = await freePort();
  const child = spawn(process.execPath, [entry], {
    env: {
      ...process.env,
      NATS_URL: natsUrl,
      NESTLAB_STACK: stack,
      ADMIN_HOST: '127.0.0.1',
      ADMIN_PORT: String(port),
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
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
  try {
    await waitFor(`${entry} ready`, async () => {
      if (child.exitCode !== null) throw new Error(`exited ${child.exitCode}: ${err}`);
      const res = await fetch(`${adminUrl}/readyz`).catch(() => undefined);
      return res?.status === 200 ? true : undefined;
    });
  } catch (e) {
    await stop();
    throw e;
  }
  return { adminUrl, stop, stderr: () => err };
}
