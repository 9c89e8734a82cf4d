// Work batched to the end of the event-loop turn: what a device or driver
// does with everything that arrived "at once" (maps coalesced into one
// hypercall, used-ring entries harvested together, counters flushed), and
// what a fault does right after the reply it must not delay.

/**
 * Collects items and hands them to `flush` once, at the end of the current
 * event-loop turn.
 *
 * Contract:
 * - The first `add` of a turn schedules one flush with `setImmediate`: it runs
 *   after the current synchronous code and its promise continuations, after
 *   the I/O callbacks of the same poll phase (other messages that arrived in
 *   the same read), and before timers of the next loop iteration.
 * - `flush` gets every item added since the last flush, in `add` order, and
 *   never an empty list. Items added while a flush runs (even an async one)
 *   go to the next turn's flush; flushes never overlap.
 * - A flush that throws or rejects is reported to `onError`; the batch keeps
 *   working. Nothing is thrown into the event loop.
 * - `drain()` flushes what is pending now and waits for running flushes
 *   (shutdown, tests).
 */
export class TurnBatch<T> {
  private items: T[] = [];
  private scheduled = false;
  private running: Promise<void> = Promise.resolve();

  constructor(
    private readonly flush: (items: T[]) => void | Promise<void>,
    private readonly onError: (err: unknown) => void,
  ) {}

  add(item: T): void {
    this.items.push(item);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => void this.run());
  }

  /** Items waiting for the next flush. */
  get pending(): number {
    return this.items.length;
  }

  async drain(): Promise<void> {
    await this.running;
    if (this.items.length > 0) await this.run();
  }

  private run(): Promise<void> {
    const next = this.running.then(async () => {
      this.scheduled = false;
      const batch = this.items;
      if (batch.length === 0) return;
      this.items = [];
      try {
        await this.flush(batch);
      } catch (err) {
        this.onError(err);
      }
    });
    this.running = next;
    return next;
  }
}

/**
 * Runs `fn` once at the end of the current turn (same timing as a TurnBatch
 * flush): after the reply the current handler sends, so a fault that strikes
 * "right after the map's reply" does not delay it. A throw or rejection goes
 * to `onError`.
 */
export function afterTurn(fn: () => unknown, onError: (err: unknown) => void): void {
  setImmediate(() => {
    try {
      void Promise.resolve(fn()).catch(onError);
    } catch (err) {
      onError(err);
    }
  });
}
