/**
 * A domain fault armed against a stream of device events (interrupts,
 * doorbells): let `after` pass, then hit the next `count`. Re-arming
 * replaces what was left, so an experiment's schedule is exactly what it
 * last asked for.
 */
export class EventFault {
  private skip = 0;
  private left = 0;

  /** Returns how many events it will hit. */
  arm(after: number, count: number): number {
    this.skip = after;
    this.left = count;
    return count;
  }

  /** Whether this event is lost; consumes the schedule. */
  hit(): boolean {
    if (this.left === 0) return false;
    if (this.skip > 0) {
      this.skip--;
      return false;
    }
    this.left--;
    return true;
  }

  get armed(): number {
    return this.left;
  }
}
