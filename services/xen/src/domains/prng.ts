// Seeded, reproducible randomness for layout variations: the same seed always
// gives the same P2M. The generator itself is shared (service-kit).
import { floatRng, permutation } from '@nestlab/service-kit';

export type Rng = () => number;
export const mulberry32 = (seed: number): Rng => floatRng(seed);
export { permutation };
