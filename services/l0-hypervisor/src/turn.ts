// L0's one place for work deferred to the end of the current event-loop turn:
// guest RAM stores reaching their file, DMA counters reaching the metrics, and
// the queue processor yielding between rounds. A shared turn-batching helper
// (service-kit) replaces these bodies when it lands; callers stay as they are.

/** Runs `fn` once the current turn's I/O callbacks have run (setImmediate). */
export function atEndOfTurn(fn: () => void): void {
  setImmediate(fn);
}

/** Resolves in the next turn: lets other messages in before more work. */
export function nextTurn(): Promise<void> {
  return new Promise<void>((resolve) => setImmediate(resolve));
}
