// Every long-running command leaves nothing behind when it is stopped
// (SIGTERM) or killed outright (SIGKILL): its nats-server and services exit by
// themselves and their ports are free again. Processes are found by a marker
// in their environment (inherited from the CLI), never by name, so other
// nestlab processes on this machine are left alone.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { anyFreePort, portIsFree } from '../fleet/ports.js';

const CLI = fileURLToPath(new URL('../../bin/nestlab.mjs', import.meta.url));
const MARKER = 'NESTLAB_TEARDOWN_TEST';
const STOP_NUMBER = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as const;

/** A process's state letter and start time (clock ticks since boot), from /proc/PID/stat. */
function stat(pid: string): { state: string; start: number } {
  const text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: f[0]!, start: Number(f[19]) };
}

/**
 * Pids of live processes started no earlier than `since` whose environment
 * carries `marker` (reading an environment is costly: only the young are read).
 */
function marked(marker: string, since: number): number[] {
  const needle = `${MARKER}=${marker}`;
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const s = stat(name);
      if (s.start < since || s.state === 'Z') continue;
      const env = readFileSync(`/proc/${name}/environ`, 'latin1');
      if (env.split('\0').includes(needle)) pids.push(Number(name));
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return pids;
}

/** The TCP ports the given processes listen on (from their socket inodes). */
function listeningPorts(pids: number[]): number[] {
  const inodes = new Set<string>();
  for (const pid of pids) {
    try {
      for (const fd of readdirSync(`/proc/${pid}/fd`)) {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m) inodes.add(m[1]!);
      }
    } catch {
      // exited meanwhile
    }
  }
  const ports = new Set<number>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(table, 'latin1').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // local address, state 0A = LISTEN, inode in column 10
      if (f[3] === '0A' && inodes.has(f[9] ?? '')) ports.add(parseInt(f[1]!.split(':')[1]!, 16));
    }
  }
  return [...ports];
}

async function until(what: string, cond: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`${what} not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * Starts `nestlab args`, waits until its processes (the CLI, nats-server,
 * services) listen on `want` ports, sends `signal` to the CLI alone, and
 * checks that within 5 s none is left and every one of those ports is free.
 */
async function stopAndCheck(args: string[], signal: NodeJS.Signals, want: number): Promise<void> {
  const marker = randomUUID();
  const cwd = mkdtempSync(join(tmpdir(), 'nestlab-teardown-'));
  const cli: ChildProcess = spawn(process.execPath, [CLI, ...args], {
    cwd,
    env: { ...process.env, [MARKER]: marker, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  cli.stderr?.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)));
  const exited = new Promise<number | null>((r) => cli.once('exit', (code) => r(code)));
  const since = stat(String(cli.pid)).start;
  const ours = () => marked(marker, since);
  try {
    await until(
      `nestlab ${args[0]} listening on ${want} ports`,
      () => listeningPorts(ours()).length >= want,
      90_000,
    );
    await new Promise((r) => setTimeout(r, 1500)); // well into its work
    const ports = listeningPorts(ours());
    const pids = ours();
    assert.ok(pids.length >= 2, `processes ${pids.join(', ')}`);
    cli.kill(signal);
    await until(
      `every process of nestlab ${args[0]} gone after ${signal}`,
      () => ours().length === 0,
      5000,
    ).catch((err: Error) => {
      const left = ours().map((pid) => readFileSync(`/proc/${pid}/cmdline`, 'latin1'));
      throw new Error(`${err.message}; left: ${left.join(' | ').replaceAll('\0', ' ')}`);
    });
    const code = await exited;
    // A run stopped by a signal says so (128 + its number), even when its job failed first.
    if (args[0] === 'run' && signal !== 'SIGKILL')
      assert.equal(code, 128 + STOP_NUMBER[signal as keyof typeof STOP_NUMBER]);
    for (const port of ports)
      assert.ok(
        await portIsFree(port),
        `port ${port} still taken: ${spawnSync('ss', ['-ltnpH', `sport = :${port}`]).stdout}`,
      );
  } catch (err) {
    throw new Error(`${(err as Error).message}\nCLI stderr:\n${stderr}`);
  } finally {
    for (const pid of ours()) process.kill(pid, 'SIGKILL');
  }
}

async function upArgs(): Promise<string[]> {
  const admin = await anyFreePort();
  return [
    'up',
    '--nats-port',
    String(await anyFreePort()),
    '--admin-port',
    '0',
    '--console-port',
    String(admin),
  ];
}

/** The cluster a worker takes its items from: one JetStream nats-server, not the CLI's (unmarked). */
let queue: ChildProcess | null = null;
let queueUrl = '';
before(async () => {
  const port = await anyFreePort();
  const store = mkdtempSync(join(tmpdir(), 'nestlab-teardown-js-'));
  queue = spawn('nats-server', ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', store], {
    stdio: 'ignore',
  });
  queueUrl = `nats://127.0.0.1:${port}`;
  await until('the work queue nats-server listening', () => !portIsFreeSync(port), 10_000);
});
after(() => {
  queue?.kill('SIGKILL');
});

/** Whether something listens on the loopback TCP port (from /proc, synchronously). */
function portIsFreeSync(port: number): boolean {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  return !['/proc/net/tcp', '/proc/net/tcp6'].some((t) =>
    readFileSync(t, 'latin1')
      .split('\n')
      .some((l) => {
        const f = l.trim().split(/\s+/);
        return f[3] === '0A' && f[1]?.endsWith(`:${hex}`);
      }),
  );
}

type Signal = 'SIGTERM' | 'SIGKILL' | 'SIGHUP' | 'SIGINT';
const COMMANDS: { name: string; args: () => Promise<string[]>; want: number; also?: Signal[] }[] = [
  // nats-server, four admin ports, the console (in the CLI).
  { name: 'up', args: upArgs, want: 6 },
  {
    name: 'run --private',
    args: async () => ['run', 'kvm-guest-baseline', '--private', '--ios', '10000000'],
    want: 5,
    // SIGHUP (a closed terminal) and SIGINT sent to the CLI alone, not its group, as a supervisor does.
    also: ['SIGHUP', 'SIGINT'],
  },
  // Its own 80 I/Os can end before the signal on a fast machine: give it work that outlasts the test.
  {
    name: 'experiment',
    args: async () => ['experiment', 'transport-chaos', '--ios', '16000'],
    want: 5,
  },
  { name: 'matrix --private', args: async () => ['matrix', '--private'], want: 5 },
  { name: 'soak', args: async () => ['soak', '--minutes', '5'], want: 5 },
  // The quick bench starts its own nats-server (and the echo responder) first.
  { name: 'bench --quick', args: async () => ['bench', '--quick'], want: 1 },
  // One hosted stack: its nats-server and four admin ports.
  {
    name: 'worker',
    args: async () => [
      'worker',
      '--stacks',
      '1',
      '--nats-url',
      queueUrl,
      '--dir',
      mkdtempSync(join(tmpdir(), 'nestlab-teardown-worker-')),
    ],
    want: 5,
  },
];

describe('a stopped or killed CLI leaves no process and no port behind', () => {
  for (const c of COMMANDS) {
    for (const signal of ['SIGTERM', 'SIGKILL', ...(c.also ?? [])] as const) {
      it(`nestlab ${c.name}, ${signal}`, { timeout: 150_000 }, async () => {
        await stopAndCheck(await c.args(), signal, c.want);
      });
    }
  }
});

describe('a service stopped on its own mid-job', () => {
  it(
    'dom0 given SIGTERM while running a 10,000,000-I/O job exits within 5 s',
    { timeout: 150_000 },
    async () => {
      const marker = randomUUID();
      const cwd = mkdtempSync(join(tmpdir(), 'nestlab-teardown-'));
      const args = ['run', 'kvm-guest-baseline', '--private', '--ios', '10000000'];
      const cli = spawn(process.execPath, [CLI, ...args], {
        cwd,
        env: { ...process.env, [MARKER]: marker, LOG_LEVEL: 'warn' },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      cli.stderr?.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)));
      const since = stat(String(cli.pid)).start;
      const ours = () => marked(marker, since);
      const dom0 = () =>
        ours().find((pid) =>
          readFileSync(`/proc/${pid}/cmdline`, 'latin1').includes('dom0-kernel'),
        );
      try {
        await until('the job running', () => stderr.includes('I/Os (randrw'), 90_000);
        await new Promise((r) => setTimeout(r, 1500)); // well into the job
        const pid = dom0();
        assert.ok(pid, `dom0 among ${ours().join(', ')}`);
        process.kill(pid, 'SIGTERM');
        // Before: the job went on submitting into the reset driver, each I/O failing at once, for minutes.
        await until(`dom0 (${pid}) gone after SIGTERM`, () => !ours().includes(pid), 5000);
      } catch (err) {
        throw new Error(`${(err as Error).message}\nCLI stderr:\n${stderr}`);
      } finally {
        for (const pid of ours()) process.kill(pid, 'SIGKILL');
      }
    },
  );
});
