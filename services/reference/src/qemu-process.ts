import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { ReferenceError } from './errors.js';

export interface QemuStartOptions {
  /** The QEMU binary (or any program, for tests). */
  binary: string;
  args: readonly string[];
  /** Hard limit on the whole life of the process: past it the process group is killed. */
  timeoutMs: number;
  /** Every console (stdout) line, as it arrives. */
  onLine?: (line: string) => void;
  /** Variables added to this process's environment for the child (e.g. an OTLP endpoint). */
  env?: Readonly<Record<string, string>>;
}

export interface QemuExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** true when the hard timeout killed it. */
  timedOut: boolean;
}

/** Process groups still alive, killed when this process exits or is told to stop. */
const live = new Set<number>();
const FORWARDED = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // already gone
  }
}

function onSignal(signal: NodeJS.Signals): void {
  for (const pgid of live) killGroup(pgid, 'SIGKILL');
  live.clear();
  guard(false);
  // Let the default action (or the caller's own handler) run now that QEMU is gone.
  process.kill(process.pid, signal);
}

function onExit(): void {
  for (const pgid of live) killGroup(pgid, 'SIGKILL');
}

/** Installs the exit/signal handlers while at least one QEMU is alive, removes them after. */
function guard(on: boolean): void {
  if (on && process.listeners('exit').includes(onExit)) return;
  if (on) {
    process.on('exit', onExit);
    for (const s of FORWARDED) process.on(s, onSignal);
  } else {
    process.off('exit', onExit);
    for (const s of FORWARDED) process.off(s, onSignal);
  }
}

let setprivChecked: boolean | null = null;
/** util-linux's setpriv sets PR_SET_PDEATHSIG before exec: QEMU dies with us even on SIGKILL. */
function hasSetpriv(): boolean {
  setprivChecked ??= spawnSync('setpriv', ['--help'], { stdio: 'ignore' }).status === 0;
  return setprivChecked;
}

/**
 * One QEMU process in its own process group. It cannot outlive its hard
 * timeout, this Node process (pdeathsig, exit and signal handlers), or stop().
 */
export class QemuProcess {
  readonly pid: number;
  readonly lines: string[] = [];
  readonly exited: Promise<QemuExit>;
  private readonly child: ChildProcess;
  private timedOut = false;
  private done = false;
  private readonly waiters: { re: RegExp; resolve: (line: string | null) => void }[] = [];

  private constructor(opts: QemuStartOptions) {
    const [cmd, args] = hasSetpriv()
      ? ['setpriv', ['--pdeathsig', 'KILL', '--', opts.binary, ...opts.args]]
      : [opts.binary, [...opts.args]];
    this.child = spawn(cmd, args, {
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...opts.env },
    });
    const pid = this.child.pid;
    if (pid === undefined) {
      throw new ReferenceError('QEMU_START_FAILED', 'environment', `cannot start ${opts.binary}`);
    }
    this.pid = pid;
    live.add(pid);
    guard(true);
    const timer = setTimeout(() => {
      this.timedOut = true;
      killGroup(pid, 'SIGKILL');
    }, opts.timeoutMs);
    let partial = '';
    this.child.stdout?.setEncoding('utf8');
    this.child.stdout?.on('data', (chunk: string) => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop() ?? '';
      for (const raw of parts) this.line(raw.replace(/\r$/, ''), opts.onLine);
    });
    this.child.stderr?.setEncoding('utf8');
    this.child.stderr?.on('data', (chunk: string) => {
      for (const raw of chunk.split('\n')) if (raw) this.lines.push(`[qemu] ${raw}`);
    });
    this.exited = new Promise((resolve) => {
      const finish = (code: number | null, signal: NodeJS.Signals | null) => {
        if (this.done) return;
        this.done = true;
        clearTimeout(timer);
        if (partial) this.line(partial, opts.onLine);
        // setpriv may have exec'd QEMU, which may have children: the group goes too.
        killGroup(pid, 'SIGKILL');
        live.delete(pid);
        if (live.size === 0) guard(false);
        for (const w of this.waiters.splice(0)) w.resolve(null);
        resolve({ code, signal, timedOut: this.timedOut });
      };
      this.child.once('exit', finish);
      this.child.once('error', () => finish(null, null));
    });
  }

  static start(opts: QemuStartOptions): QemuProcess {
    return new QemuProcess(opts);
  }

  get running(): boolean {
    return !this.done;
  }

  private line(line: string, onLine?: (line: string) => void): void {
    this.lines.push(line);
    onLine?.(line);
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      const w = this.waiters[i];
      if (w && w.re.test(line)) {
        this.waiters.splice(i, 1);
        w.resolve(line);
      }
    }
  }

  /** The first console line (already seen or to come) matching re; null on exit or after ms. */
  waitForLine(re: RegExp, ms: number): Promise<string | null> {
    const seen = this.lines.find((l) => re.test(l));
    if (seen !== undefined) return Promise.resolve(seen);
    if (this.done) return Promise.resolve(null);
    return new Promise((resolve) => {
      const w = {
        re,
        resolve: (l: string | null) => {
          clearTimeout(t);
          resolve(l);
        },
      };
      const t = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        resolve(null);
      }, ms);
      this.waiters.push(w);
    });
  }

  /** Stops the whole group: SIGTERM, then SIGKILL after graceMs. Resolves once it has exited. */
  async stop(graceMs = 2000): Promise<QemuExit> {
    if (this.done) return this.exited;
    killGroup(this.pid, 'SIGTERM');
    const t = setTimeout(() => killGroup(this.pid, 'SIGKILL'), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(t);
    }
  }
}

/** Runs work with a started QEMU and always stops it afterwards, whatever work does. */
export async function withQemu<T>(
  opts: QemuStartOptions,
  work: (q: QemuProcess) => Promise<T>,
): Promise<{ result: T; exit: QemuExit; lines: string[] }> {
  const q = QemuProcess.start(opts);
  try {
    const result = await work(q);
    return { result, exit: await q.stop(), lines: q.lines };
  } catch (err) {
    await q.stop();
    throw err;
  }
}
