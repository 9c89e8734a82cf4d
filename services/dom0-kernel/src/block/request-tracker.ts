// Per-I/O state: every I/O ends exactly once — completed or failed — and an
// I/O not completed by its deadline fails with TIMEOUT. A completion that
// arrives after that is ignored and counted (the lab's "lost" or "late" I/O).
import { Dom0Error } from '../errors.js';

export type IoOutcome<V> =
  | { readonly ok: true; readonly value: V }
  | { readonly ok: false; readonly code: string; readonly message: string };

interface Pending<V> {
  resolve: (o: IoOutcome<V>) => void;
  /** performance.now() at the deadline. */
  deadlineAt: number;
  deadlineMs: number;
  abort: LazyAbort;
}

/**
 * The abort signal of one I/O, made only when someone asks for it: most I/Os
 * never wait for anything abortable, and a signal per I/O was a measurable
 * share of the submit path.
 */
export class LazyAbort {
  private ctrl: AbortController | null = null;
  private reason: unknown = undefined;
  private done = false;

  get signal(): AbortSignal {
    if (this.ctrl === null) {
      this.ctrl = new AbortController();
      if (this.done) this.ctrl.abort(this.reason);
    }
    return this.ctrl.signal;
  }

  get aborted(): boolean {
    return this.done;
  }

  /** Whether `err` is what aborting this I/O threw at a waiter. */
  abortedBy(err: unknown): boolean {
    return this.done && this.ctrl !== null && err === this.ctrl.signal.reason;
  }

  abort(reason: unknown): void {
    if (this.done) return;
    this.done = true;
    this.reason = reason;
    this.ctrl?.abort(reason);
  }
}

/** One tracked I/O. A class: an object literal with a getter cost a closure and an accessor per I/O. */
export class Tracked<V> {
  constructor(
    readonly outcome: Promise<IoOutcome<V>>,
    readonly abort: LazyAbort,
  ) {}

  /** Aborts when the I/O fails, so the submit path can stop early. */
  get signal(): AbortSignal {
    return this.abort.signal;
  }
}

const REMEMBER_SETTLED = 65536;
const FORGET_AT_ONCE = 1024;

export class RequestTracker<V> {
  private readonly pending = new Map<string, Pending<V>>();
  private readonly settled = new Map<string, 'completed' | 'failed'>();
  /** Completions for I/Os that had already failed (deadline, reset). */
  late = 0;
  /** Second completions of an I/O that had completed. */
  duplicate = 0;
  /**
   * One timer for every deadline, armed for the earliest: a timer per I/O
   * (made, then cleared by its completion) was a visible share of the submit path.
   */
  private timer: NodeJS.Timeout | null = null;
  private timerAt = Infinity;

  get inFlight(): number {
    return this.pending.size;
  }

  /**
   * Starts tracking; the promise settles exactly once. The signal aborts when
   * the I/O fails, so the submit path can stop early.
   */
  start(id: string, deadlineMs: number): Tracked<V> {
    if (this.pending.has(id) || this.settled.has(id)) {
      throw new Dom0Error('NOT_READY', `I/O id ${id} is already in use`, { kind: 'internal' });
    }
    const abort = new LazyAbort();
    const deadlineAt = performance.now() + deadlineMs;
    const outcome = new Promise<IoOutcome<V>>((resolve) => {
      this.pending.set(id, { resolve, deadlineAt, deadlineMs, abort });
    });
    if (deadlineAt < this.timerAt) this.arm(deadlineAt);
    return new Tracked(outcome, abort);
  }

  isPending(id: string): boolean {
    return this.pending.has(id);
  }

  /** Returns false (and counts) when the I/O had already ended. */
  complete(id: string, value: V): boolean {
    const p = this.take(id, 'completed');
    if (p === undefined) {
      if (this.settled.get(id) === 'completed') this.duplicate++;
      else this.late++;
      return false;
    }
    p.resolve({ ok: true, value });
    return true;
  }

  fail(id: string, code: string, message: string): boolean {
    const p = this.take(id, 'failed');
    if (p === undefined) return false;
    p.abort.abort(new Dom0Error('TIMEOUT', message));
    p.resolve({ ok: false, code, message });
    return true;
  }

  failAll(code: string, message: string): number {
    const ids = [...this.pending.keys()];
    for (const id of ids) this.fail(id, code, message);
    return ids.length;
  }

  private arm(at: number): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => this.expire(), Math.max(0, at - performance.now()));
  }

  /** Fails every I/O past its deadline with TIMEOUT; arms the timer for the next deadline. */
  private expire(): void {
    this.timer = null;
    this.timerAt = Infinity;
    const now = performance.now();
    const due: [string, Pending<V>][] = [];
    let next = Infinity;
    for (const [id, p] of this.pending) {
      if (p.deadlineAt <= now) due.push([id, p]);
      else if (p.deadlineAt < next) next = p.deadlineAt;
    }
    for (const [id, p] of due) {
      this.fail(id, 'TIMEOUT', `I/O ${id} did not complete within ${p.deadlineMs} ms`);
    }
    if (next < this.timerAt) this.arm(next);
  }

  private take(id: string, how: 'completed' | 'failed'): Pending<V> | undefined {
    const p = this.pending.get(id);
    if (p === undefined) return undefined;
    this.pending.delete(id);
    // Nothing in flight: no timer left to wake the process.
    if (this.pending.size === 0 && this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
      this.timerAt = Infinity;
    }
    this.settled.set(id, how);
    // Forget the oldest in bulk: one iterator per FORGET_AT_ONCE I/Os, not one per I/O.
    if (this.settled.size > REMEMBER_SETTLED + FORGET_AT_ONCE) {
      let n = FORGET_AT_ONCE;
      for (const old of this.settled.keys()) {
        this.settled.delete(old);
        if (--n === 0) break;
      }
    }
    return p;
  }
}
