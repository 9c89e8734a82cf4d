import type { ExpectKey, Expectation, ExperimentFile } from './file-schema.js';

/** Whether an observed value meets a declared expectation (`0`, `">0"`, `any`, `null`…). */
export function meets(value: number | null, e: Expectation): boolean {
  if (e === 'any') return true;
  if (e === null) return value === null;
  if (value === null) return false;
  if (typeof e === 'number') return value === e;
  const m = /^(>=|<=|==|>|<)(\d+)$/.exec(e);
  if (!m) return false;
  const n = Number(m[2]);
  switch (m[1]) {
    case '>':
      return value > n;
    case '>=':
      return value >= n;
    case '<':
      return value < n;
    case '<=':
      return value <= n;
    default:
      return value === n;
  }
}

export interface Mismatch {
  readonly key: ExpectKey;
  readonly expected: Expectation;
  readonly got: number | null;
}

/** Every declared expectation the observed values do not meet. */
export function mismatches(
  expect: ExperimentFile['expect'],
  got: Record<ExpectKey, number | null>,
): Mismatch[] {
  const out: Mismatch[] = [];
  for (const [key, e] of Object.entries(expect) as [ExpectKey, Expectation | undefined][]) {
    if (e === undefined) continue;
    if (!meets(got[key], e)) out.push({ key, expected: e, got: got[key] });
  }
  return out;
}
