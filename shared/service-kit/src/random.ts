// Seeded, reproducible randomness shared by the services (P2M layouts,
// workloads, fault plans): the same seed gives the same sequence everywhere.

/** mulberry32: a small seeded PRNG yielding unsigned 32-bit integers. */
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

/** A float in [0, 1) from a u32 source. */
export const unit = (next: () => number) => next() / 2 ** 32;
/** An integer in [0, n). */
export const below = (next: () => number, n: number) => Math.floor(unit(next) * n);
/** A float source in [0, 1) for a seed. */
export const floatRng = (seed: number) => {
  const next = mulberry32(seed);
  return () => unit(next);
};

/** Fisher-Yates permutation of 0..n-1 drawn from a float source. */
export function permutation(n: number, rng: () => number): number[] {
  const out = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const t = out[i] as number;
    out[i] = out[j] as number;
    out[j] = t;
  }
  return out;
}

/** FNV-1a of a string: derives sub-seeds (per rule, per block) from one seed. */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}
