// Depth scheduling (fio's iodepth): keeps up to `depth` planned I/Os running
// until `count` have been started and all of them have ended. A task that
// throws is reported to `onError` and its slot is reused.
export async function runAtDepth<P>(
  items: Iterator<P>,
  count: number,
  depth: number,
  run: (i: number, item: P) => Promise<void>,
  onError: (err: unknown) => void,
): Promise<void> {
  await new Promise<void>((resolve) => {
    let issued = 0;
    let inFlight = 0;
    const launch = () => {
      while (inFlight < depth && issued < count) {
        const p = items.next();
        if (p.done) break;
        const i = issued++;
        inFlight++;
        void run(i, p.value)
          .catch(onError)
          .finally(() => {
            inFlight--;
            if (inFlight === 0 && issued >= count) resolve();
            else launch();
          });
      }
      if (inFlight === 0 && issued >= count) resolve();
    };
    launch();
  });
}
