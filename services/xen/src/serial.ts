// Runs async mutations one at a time, so a table change and the CpuFrames push
// that publishes it (or its rollback) never interleave with another change.
export class Serial {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => undefined);
    return next;
  }
}
