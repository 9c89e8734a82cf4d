import { pino, type Logger } from 'pino';

/** Structured JSON logs on stdout, one logger per process. */
export function createLogger(
  name: string,
  level: string,
  base: Record<string, string> = {},
): Logger {
  return pino({ name, level, base: { service: name, ...base } });
}
export type { Logger };
