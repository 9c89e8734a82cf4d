// One I/O per block at a time, served in arrival order. A freed block is
// handed straight to its oldest waiter: with "delete, then wake the waiters",
// an I/O launched in the microtasks between the free and the waiter's wake-up
// took the block first, so a later I/O (higher history index) could run before
// an earlier one waiting for the same block — the history then showed two
// I/Os of one block overlapping in the wrong order.

interface Waiter {
  grant: (release: () => void) => void;
  timer: NodeJS.Timeout | null;
}

export class BlockLocks {
  /** Blocks held, with the I/Os waiting for each (oldest first). */
  private readonly held = new Map<number, Waiter[]>();

  get size(): number {
    return this.held.size;
  }

  /**
   * Resolves with the release function once the block is ours, or null when
   * `timeoutMs` passed first (the waiter then leaves the queue).
   */
  acquire(block: number, timeoutMs: number): Promise<(() => void) | null> {
    const queue = this.held.get(block);
    if (queue === undefined) {
      this.held.set(block, []);
      return Promise.resolve(this.releaser(block));
    }
    return new Promise((resolve) => {
      const w: Waiter = { grant: resolve, timer: null };
      w.timer = setTimeout(
        () => {
          const i = queue.indexOf(w);
          if (i >= 0) queue.splice(i, 1);
          resolve(null);
        },
        Math.max(0, timeoutMs),
      );
      w.timer.unref();
      queue.push(w);
    });
  }

  /** A release that works once: the block goes to the oldest waiter, or is free. */
  private releaser(block: number): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const queue = this.held.get(block);
      const next = queue?.shift();
      if (next === undefined) {
        this.held.delete(block);
        return;
      }
      if (next.timer !== null) clearTimeout(next.timer);
      next.grant(this.releaser(block));
    };
  }
}
