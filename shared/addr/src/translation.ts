import { toHex } from './hex.js';
import type { Layer, LayerAddr } from './layers.js';

/** Who performed a crossing; these are the values of `nestlab.translation.by`. */
export const TRANSLATORS = ['p2m', 'iommu', 'memslot', 'identity', 'bypass', 'grant'] as const;
export type TranslatedBy = (typeof TRANSLATORS)[number];

/** One hop of an address from one layer to another, as traced and shown in the ladder. */
export interface TranslationStep {
  readonly from: string;
  readonly to: string | null;
  readonly fromLayer: Layer;
  readonly toLayer: Layer;
  readonly by: TranslatedBy;
  readonly ok: boolean;
  /** The named function that did it, e.g. `legacyPhysAsBus`. */
  readonly fn: string;
  readonly reason?: string;
}

export type Translation<T> =
  | { readonly ok: true; readonly addr: T; readonly step: TranslationStep }
  | { readonly ok: false; readonly step: TranslationStep };

interface Crossing<F extends Layer, T extends Layer> {
  fn: string;
  from: F;
  to: T;
  by: TranslatedBy;
}

/**
 * Declares a named crossing from one layer to another. The returned helpers
 * are the only way the crossing's result is recorded: every success and every
 * failure yields a TranslationStep for traces and the oracle.
 */
export function crossing<F extends Layer, T extends Layer>(c: Crossing<F, T>) {
  const step = (from: LayerAddr[F], to: LayerAddr[T] | null, reason?: string): TranslationStep => ({
    from: toHex(from),
    to: to === null ? null : toHex(to),
    fromLayer: c.from,
    toLayer: c.to,
    by: c.by,
    ok: to !== null,
    fn: c.fn,
    ...(reason === undefined ? {} : { reason }),
  });
  return {
    ...c,
    ok: (from: LayerAddr[F], to: LayerAddr[T]): Translation<LayerAddr[T]> => ({
      ok: true,
      addr: to,
      step: step(from, to),
    }),
    fail: (from: LayerAddr[F], reason: string): Translation<LayerAddr[T]> => ({
      ok: false,
      step: step(from, null, reason),
    }),
  };
}
