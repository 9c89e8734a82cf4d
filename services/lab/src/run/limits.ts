// The bounds of a run's knobs, one place for the CLI's flags and the
// console's request schema, so both accept exactly the same values. `ios`
// and `iodepth` are dom0's Workload bounds (shared/protocol messages/dom0.ts).
import { Type, type Static } from '@sinclair/typebox';

export const RUN_LIMITS = {
  ios: { min: 1, max: 10_000_000 },
  iodepth: { min: 1, max: 1024 },
  seed: { min: 0, max: 0xffffffff },
} as const;

const int = (k: keyof typeof RUN_LIMITS) =>
  Type.Optional(Type.Integer({ minimum: RUN_LIMITS[k].min, maximum: RUN_LIMITS[k].max }));

/** The body of `POST /api/scenarios/:id/run`: every field optional, nothing else. */
export const RunRequest = Type.Object(
  { ios: int('ios'), iodepth: int('iodepth'), seed: int('seed') },
  { additionalProperties: false },
);
export type RunRequest = Static<typeof RunRequest>;
