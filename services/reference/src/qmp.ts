import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { ReferenceError } from './errors.js';

/** A minimal QMP client (QEMU's JSON monitor): one command at a time, events ignored. */
export class Qmp {
  private buf = '';
  private pending: { resolve: (v: unknown) => void; reject: (e: Error) => void } | null = null;

  private constructor(private readonly sock: Socket) {
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => this.data(chunk));
    sock.on('error', () => undefined);
    sock.on('close', () => this.fail(new Error('QMP connection closed')));
  }

  /** Connects (retrying while QEMU creates the socket) and leaves capabilities negotiation mode. */
  static async connect(path: string, timeoutMs = 10_000): Promise<Qmp> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      try {
        const sock = await new Promise<Socket>((resolve, reject) => {
          const s = connect(path, () => resolve(s));
          s.once('error', reject);
        });
        const qmp = new Qmp(sock);
        await qmp.next(timeoutMs); // the greeting
        await qmp.execute('qmp_capabilities');
        return qmp;
      } catch (cause) {
        if (Date.now() > until) {
          throw new ReferenceError(
            'QMP_FAILED',
            'transient',
            `cannot reach QEMU's monitor at ${path}`,
            { cause },
          );
        }
        await sleep(100);
      }
    }
  }

  private data(chunk: string): void {
    this.buf += chunk;
    for (let nl = this.buf.indexOf('\n'); nl >= 0; nl = this.buf.indexOf('\n')) {
      const line = this.buf.slice(0, nl).trim();
      this.buf = this.buf.slice(nl + 1);
      if (!line) continue;
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      if ('event' in msg) continue;
      const p = this.pending;
      this.pending = null;
      if (!p) continue;
      if ('error' in msg) {
        const e = msg['error'] as { desc?: string };
        p.reject(new Error(e.desc ?? 'QMP error'));
      } else p.resolve(msg['return'] ?? msg['QMP']);
    }
  }

  private fail(err: Error): void {
    const p = this.pending;
    this.pending = null;
    p?.reject(err);
  }

  private next(timeoutMs: number): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => this.fail(new Error('QMP reply timed out')), timeoutMs);
      this.pending = {
        resolve: (v) => (clearTimeout(t), resolve(v)),
        reject: (e) => (clearTimeout(t), reject(e)),
      };
    });
  }

  async execute(
    command: string,
    args?: Record<string, unknown>,
    timeoutMs = 10_000,
  ): Promise<unknown> {
    const reply = this.next(timeoutMs);
    this.sock.write(
      `${JSON.stringify(args ? { execute: command, arguments: args } : { execute: command })}\n`,
    );
    return reply;
  }

  /** A human monitor command (e.g. `xp /4xw 0x1000`), its text output. */
  async hmp(commandLine: string): Promise<string> {
    return String(await this.execute('human-monitor-command', { 'command-line': commandLine }));
  }

  close(): void {
    this.sock.destroy();
  }
}
