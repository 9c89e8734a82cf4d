// Free descriptors of one ring and the requests waiting for some (FIFO): a
// chain that does not fit now waits, and gives up when its I/O is aborted.
import { Dom0Error } from '../errors.js';

interface Waiter {
  n: number;
  resolve: (first: number[]) => void;
  reject: (err: unknown) => void;
}

export class DescPool {
  private readonly free: number[];
  private readonly waiters: Waiter[] = [];

  constructor(readonly size: number) {
    this.free = Array.from({ length: size }, (_, i) => i);
  }

  get available(): number {
    return this.free.length;
  }

  /** Takes `n` descriptors if they are free and nobody waits before us; else null (see reserve). */
  takeNow(n: number): number[] | null {
    return n <= this.size && this.waiters.length === 0 && this.free.length >= n
      ? this.take(n)
      : null;
  }

  /** Takes `n` descriptors now or waits for them; `signal` (asked for only then) abandons the wait. */
  reserve(n: number, abortSignal?: () => AbortSignal): Promise<number[]> {
    if (n > this.size) {
      return Promise.reject(
        new Dom0Error('NO_MEMORY', `a chain of ${n} does not fit a queue of ${this.size}`),
      );
    }
    const now = this.takeNow(n);
    if (now !== null) return Promise.resolve(now);
    const signal = abortSignal?.();
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const w: Waiter = { n, resolve, reject };
      this.waiters.push(w);
      signal?.addEventListener(
        'abort',
        () => {
          const i = this.waiters.indexOf(w);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(signal.reason);
        },
        { once: true },
      );
    });
  }

  release(descs: readonly number[]): void {
    for (const d of descs) this.free.push(d);
    while (this.waiters.length > 0 && this.free.length >= this.waiters[0]!.n) {
      const w = this.waiters.shift()!;
      w.resolve(this.take(w.n));
    }
  }

  /** The ring is gone (device reset): every waiter gets `err`. */
  rejectWaiters(err: unknown): void {
    for (const w of this.waiters.splice(0)) w.reject(err);
  }

  private take(n: number): number[] {
    return this.free.splice(0, n);
  }
}
