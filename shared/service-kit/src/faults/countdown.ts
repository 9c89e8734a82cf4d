/**
 * Which events an armed domain fault hits: it lets `after` events pass,
 * then hits the next `count`, then is spent.
 */
export class Countdown {
  constructor(
    private skip: number,
    private left: number,
  ) {}

  /** Call once per event; true when the fault hits this one. */
  hit(): boolean {
    if (this.skip > 0) {
      this.skip--;
      return false;
    }
    if (this.left === 0) return false;
    this.left--;
    return true;
  }

  get pending(): number {
    return this.left;
  }
}
