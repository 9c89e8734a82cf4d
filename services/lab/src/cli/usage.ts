/** Wrong words on the command line: exit code 2 and one clear message. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  readonly code = 'USAGE';
}

export const EXIT = { ok: 0, notAsExpected: 1, usage: 2 } as const;

/** Parses a whole positive number option, or fails naming the option. */
export function intOption(
  name: string,
  raw: string | undefined,
  fallback: number,
  min = 1,
  max = 1e9,
): number {
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw))
    throw new UsageError(`--${name} takes a whole number, got ${JSON.stringify(raw)}`);
  const n = Number(raw);
  if (n < min || n > max)
    throw new UsageError(`--${name} must be between ${min} and ${max}, got ${n}`);
  return n;
}
