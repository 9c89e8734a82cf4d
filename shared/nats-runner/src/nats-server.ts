import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface NatsServerHandle {
  readonly url: string;
  readonly port: number;
  /** Stops the server and waits for it to exit. Safe to call twice. */
  stop(): Promise<void>;
  /** The server process, for tests that kill it on purpose. */
  readonly process: ChildProcess;
}

export interface NatsServerOptions {
  /** Extra nats-server config text (e.g. authorization blocks). */
  config?: string;
  /** A fixed port; default: the server picks a free one on loopback. */
  port?: number;
  startTimeoutMs?: number;
}

/** Finds the nats-server binary or explains how to get it; never installs anything. */
export function natsServerBinary(): string {
  const bin = process.env['NATS_SERVER_BIN'] ?? 'nats-server';
  const probe = spawnSync(bin, ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    throw new Error(
      `nats-server not found (tried "${bin}"). Install it (Debian: apt-get install nats-server) ` +
        'or set NATS_SERVER_BIN; tests need a real server and do not skip.',
    );
  }
  return bin;
}

/** Starts a real nats-server on a free loopback port and resolves once it accepts clients. */
export async function startNatsServer(opts: NatsServerOptions = {}): Promise<NatsServerHandle> {
  const bin = natsServerBinary();
  const dir = mkdtempSync(join(tmpdir(), 'nestlab-nats-'));
  const conf = join(dir, 'nats.conf');
  // 0600: the config may hold passwords (authorizationConfig).
  writeFileSync(conf, `listen: "127.0.0.1:${opts.port ?? -1}"\n${opts.config ?? ''}\n`, {
    mode: 0o600,
  });
  const child = spawn(bin, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`nats-server did not become ready in time:\n${log}`)),
      opts.startTimeoutMs ?? 10_000,
    );
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      log += chunk;
      const m = /Listening for client connections on [^\s]+:(\d+)/.exec(log);
      if (m && log.includes('Server is ready')) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`nats-server exited with ${code} before it was ready:\n${log}`));
    });
  });
  let stopped: Promise<void> | undefined;
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    process: child,
    stop() {
      stopped ??= new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }).finally(() => rmSync(dir, { recursive: true, force: true }));
      return stopped;
    },
  };
}
