// Depth scheduling (fio's iodepth): keeps up to `depth` planned I/Os running
// until `count` have been started (or `stopped()` says to start no more) and
// all of them have ended. A task that throws is reported to `onError` and its
// slot is reused.
export async function runAtDepth<P>(
  items: Iterator<P>,
  count: number,
  depth: number,
  run: (i: number, item: P) => Promise<void>,
  onError: (err: unknown) => void,
  stopped: () => boolean = () => false,
): Promise<void> {
  await new Promise<void>((resolve) => {
    let issued = 0;
    let inFlight = 0;
    const more = () => issued < count && !stopped();
    const launch = () => {
      while (inFlight < depth && more()) {
        const p = items.next();
        if (p.done) break;
        const i = issued++;
        inFlight++;
        void run(i, p.value)
          .catch(onError)
          .finally(() => {
            inFlight--;
            if (inFlight === 0 && !more()) resolve();
            else launch();
          });
      }
      if (inFlight === 0 && !more()) resolve();
    };
    launch();
  });
}
