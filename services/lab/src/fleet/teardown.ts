// What a lab process must undo when it is told to stop (SIGINT, SIGTERM,
// SIGHUP): every fleet it started registers its stop here, and the CLI's
// signal handler runs them all before it exits. Children would die with the
// CLI anyway (parent-watch), but this way they stop cleanly and say so.

type Teardown = () => Promise<unknown>;

const pending = new Set<Teardown>();

/** Registers `fn` to run on a stop signal; returns a function that unregisters it. */
export function onTeardown(fn: Teardown): () => void {
  pending.add(fn);
  return () => pending.delete(fn);
}

/**
 * Runs every registered teardown once, all bounded by `timeoutMs`; never
 * throws. Resolves with the first exit code a teardown returned, if any.
 */
export async function runTeardowns(timeoutMs = 10_000): Promise<number | undefined> {
  const all = [...pending];
  pending.clear();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<[]>((r) => (timer = setTimeout(() => r([]), timeoutMs)));
  const settled = await Promise.race([Promise.allSettled(all.map((fn) => fn())), deadline]);
  clearTimeout(timer);
  for (const s of settled)
    if (s.status === 'fulfilled' && typeof s.value === 'number') return s.value;
  return undefined;
}

export const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

let stopping = false;
/**
 * Whether a stop signal is being handled: the command's own end (often an
 * error, its fleet going away under it) then leaves the exit to the handler.
 */
export const stopSignalled = (): boolean => stopping;
const SIGNAL_NUMBER: Record<(typeof STOP_SIGNALS)[number], number> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGTERM: 15,
};

/**
 * Makes SIGINT, SIGTERM and SIGHUP tear down what was registered and exit
 * with 128 + the signal's number, or the exit code a teardown returned (as
 * `up` does for a clean stop). A second signal exits at once.
 */
export function exitOnStopSignals(say: (line: string) => void): void {
  for (const sig of STOP_SIGNALS) {
    process.on(sig, () => {
      const code = 128 + SIGNAL_NUMBER[sig];
      if (stopping) process.exit(code);
      stopping = true;
      say(`${sig}: stopping…`);
      void runTeardowns().then((chosen) => process.exit(chosen ?? code));
    });
  }
}
