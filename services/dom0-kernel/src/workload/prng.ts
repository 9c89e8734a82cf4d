/** mulberry32: a small seeded 32-bit PRNG; the same seed gives the same sequence everywhere. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** A float in [0, 1). */
export const unit = (next: () => number) => next() / 2 ** 32;
/** An integer in [0, n). */
export const below = (next: () => number, n: number) => Math.floor(unit(next) * n);
