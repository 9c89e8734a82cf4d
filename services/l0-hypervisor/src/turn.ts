// L0's one place for work deferred to the end of the current event-loop turn:
// guest RAM stores reaching their file, DMA counters reaching the metrics, and
// the queue processor yielding between rounds, on service-kit's turn helpers.
import { afterTurn } from '@nestlab/service-kit';

/**
 * Deferred work must not fail; if it does anyway, the process goes down as it
 * would on an uncaught throw (its state is no longer trusted), from a fresh
 * stack so the cause is reported as such.
 */
function uncaught(err: unknown): void {
  queueMicrotask(() => {
    throw err;
  });
}

/** Runs `fn` once the current turn's I/O callbacks have run (service-kit afterTurn). */
export function atEndOfTurn(fn: () => void): void {
  afterTurn(fn, uncaught);
}

/** Resolves in the next turn: lets other messages in before more work. */
export function nextTurn(): Promise<void> {
  return new Promise<void>((resolve) => setImmediate(resolve));
}
