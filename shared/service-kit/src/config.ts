import { resolve } from 'node:path';
import { assertToken, hasCode } from '@nestlab/protocol';

export interface ServiceConfig {
  readonly service: string;
  readonly natsUrl: string;
  readonly stack: string;
  readonly adminHost: string;
  readonly adminPort: number;
  readonly logLevel: string;
  /**
   * NESTLAB_DATA_DIR: where the service keeps what must survive a SIGKILL
   * (journals, saved state); unset: nothing survives the process.
   */
  readonly dataDir?: string;
  /** NATS credentials, when the server requires them (user/password auth). */
  readonly natsUser?: string;
  readonly natsPass?: string;
}

/** A bad environment variable: startup stops with one line naming it. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code = 'CONFIG_INVALID';
  readonly kind = 'input';
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
  }
}

/** Any refused setting (this kit's ConfigError, telemetry's, a service's own). */
export const isConfigError = (err: unknown) => hasCode(err, 'CONFIG_INVALID');

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function natsUrls(raw: string): string {
  for (const url of raw.split(',')) {
    let parsed: URL;
    try {
      parsed = new URL(url.trim());
    } catch {
      throw new ConfigError(
        'NATS_URL',
        `${JSON.stringify(url)} is not a URL (expected nats://host:port)`,
      );
    }
    if (!['nats:', 'tls:', 'ws:', 'wss:'].includes(parsed.protocol) || !parsed.hostname) {
      throw new ConfigError('NATS_URL', `${JSON.stringify(url)} must look like nats://host:port`);
    }
  }
  return raw;
}

/** NESTLAB_DATA_DIR, made absolute (the service may change directory); unset or empty: none. */
export function dataDirFromEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const raw = env['NESTLAB_DATA_DIR'];
  if (raw === undefined || raw === '') return undefined;
  if (raw.includes('\0') || raw.trim() !== raw)
    throw new ConfigError(
      'NESTLAB_DATA_DIR',
      `${JSON.stringify(raw)} is not a usable directory path`,
    );
  return resolve(raw);
}

function port(name: string, raw: string): number {
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n > 65535)
    throw new ConfigError(name, `${JSON.stringify(raw)} is not a TCP port (0-65535)`);
  return n;
}

/** Reads and checks the service's environment; throws ConfigError on the first bad variable. */
export function loadConfig(
  service: string,
  defaultAdminPort: number,
  env: NodeJS.ProcessEnv = process.env,
): ServiceConfig {
  const stack = env['NESTLAB_STACK'] ?? 's1';
  try {
    assertToken('stack', stack);
  } catch {
    throw new ConfigError(
      'NESTLAB_STACK',
      `${JSON.stringify(stack)} must be 1-64 of A-Z a-z 0-9 _ -`,
    );
  }
  const logLevel = env['LOG_LEVEL'] ?? 'info';
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError(
      'LOG_LEVEL',
      `${JSON.stringify(logLevel)} is not one of ${LOG_LEVELS.join(', ')}`,
    );
  }
  const user = env['NATS_USER'];
  const pass = env['NATS_PASS'];
  if ((user === undefined) !== (pass === undefined)) {
    throw new ConfigError(
      user === undefined ? 'NATS_USER' : 'NATS_PASS',
      'NATS_USER and NATS_PASS go together',
    );
  }
  const dataDir = dataDirFromEnv(env);
  return {
    service,
    natsUrl: natsUrls(env['NATS_URL'] ?? 'nats://127.0.0.1:4222'),
    stack,
    adminHost: env['ADMIN_HOST'] ?? '127.0.0.1',
    adminPort: port('ADMIN_PORT', env['ADMIN_PORT'] ?? String(defaultAdminPort)),
    logLevel,
    ...(dataDir !== undefined ? { dataDir } : {}),
    ...(user !== undefined && pass !== undefined ? { natsUser: user, natsPass: pass } : {}),
  };
}
