/**
 * Which events an armed domain fault hits: it lets `after` events pass,
 * then hits the next `count`, then is spent. Re-arming replaces what was
 * left, so an experiment's schedule is exactly what it last asked for.
 */
export class Countdown {
  constructor(
    private skip = 0,
    private left = 0,
  ) {}

  /** Replaces the schedule; returns how many events it will hit. */
  arm(after: number, count: number): number {
    this.skip = after;
    this.left = count;
    return count;
  }

  /** Call once per event; true when the fault hits this one. */
  hit(): boolean {
    if (this.left === 0) return false;
    if (this.skip > 0) {
      this.skip--;
      return false;
    }
    this.left--;
    return true;
  }

  /** Events still to be hit. */
  get pending(): number {
    return this.left;
  }
}
