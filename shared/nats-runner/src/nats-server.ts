import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface NatsServerHandle {
  readonly url: string;
  readonly port: number;
  /** Stops the server and waits for it to exit. Safe to call twice. */
  stop(): Promise<void>;
  /**
   * Kills the server (SIGKILL, as a crash would), waits `downMs`, and starts
   * it again on the same port with the same config; resolves once it accepts
   * clients. Clients that reconnect forever find it again at the same URL.
   */
  restart(downMs?: number): Promise<void>;
  /** The current server process, for tests that kill it on purpose (changes on restart). */
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

let setpriv: boolean | undefined;

/**
 * The command line that runs `bin` so the kernel SIGKILLs it when this
 * process dies, however it dies (PR_SET_PDEATHSIG via util-linux `setpriv`,
 * which then execs `bin`: same pid, same stdio). A program that cannot watch
 * its parent itself, like nats-server, needs this; without setpriv the
 * command is returned as is.
 */
export function dieWithParent(bin: string, args: readonly string[]): [string, string[]] {
  setpriv ??= spawnSync('setpriv', ['--pdeathsig', 'KILL', '--', 'true']).status === 0;
  return setpriv ? ['setpriv', ['--pdeathsig', 'KILL', '--', bin, ...args]] : [bin, [...args]];
}

function writeConfig(dir: string, port: number | undefined, extra: string | undefined): string {
  const conf = join(dir, 'nats.conf');
  // 0600: the config may hold passwords (authorizationConfig).
  writeFileSync(conf, `listen: "127.0.0.1:${port ?? -1}"\n${extra ?? ''}\n`, { mode: 0o600 });
  return conf;
}

/** Spawns nats-server with `conf`; resolves with its port once it says it is ready. */
function launch(
  bin: string,
  conf: string,
  timeoutMs: number,
): Promise<{ child: ChildProcess; port: number }> {
  const [cmd, args] = dieWithParent(bin, ['-c', conf]);
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`nats-server did not become ready in time:\n${log}`));
    }, timeoutMs);
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      log += chunk;
      const m = /Listening for client connections on [^\s]+:(\d+)/.exec(log);
      if (m && log.includes('Server is ready')) {
        clearTimeout(timer);
        resolve({ child, port: Number(m[1]) });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`nats-server exited with ${code} before it was ready:\n${log}`));
    });
  });
}

function ended(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  return new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill(signal);
  });
}

/** Starts a real nats-server on a free loopback port and resolves once it accepts clients. */
export async function startNatsServer(opts: NatsServerOptions = {}): Promise<NatsServerHandle> {
  const bin = natsServerBinary();
  const dir = mkdtempSync(join(tmpdir(), 'nestlab-nats-'));
  const timeoutMs = opts.startTimeoutMs ?? 10_000;
  const first = await launch(bin, writeConfig(dir, opts.port, opts.config), timeoutMs);
  const port = first.port;
  let child = first.child;
  // A restart pins the port the first start got, so clients find the server again.
  const pinned = writeConfig(dir, port, opts.config);
  let stopped: Promise<void> | undefined;
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    get process() {
      return child;
    },
    async restart(downMs = 0) {
      if (stopped) throw new Error('nats-server was stopped; it cannot be restarted');
      await ended(child, 'SIGKILL');
      if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
      // The kernel may hold the port briefly after a kill: retry within the start timeout.
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        try {
          ({ child } = await launch(bin, pinned, timeoutMs));
          return;
        } catch (err) {
          if (Date.now() > deadline) throw err;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    },
    stop() {
      stopped ??= ended(child, 'SIGTERM').finally(() =>
        rmSync(dir, { recursive: true, force: true }),
      );
      return stopped;
    },
  };
}
