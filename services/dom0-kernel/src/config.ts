// dom0's own settings from the environment, beside service-kit's NATS_URL,
// ADMIN_PORT…: a bad value is a ConfigError naming the variable, and
// server.ts stops with one line and exit code 2, as runService does for its own.
import { resolve } from 'node:path';
import { ConfigError } from '@nestlab/service-kit';

export interface Dom0Settings {
  /** NESTLAB_DOM0_HANG_MS: hung-queue timeout (Infinity: `off`); absent: the default rule. */
  readonly hangMs?: number;
  /** NESTLAB_IOMMU_STRICT=1: every IOMMU unmap is sent before the I/O completes (iommu.strict=1). */
  readonly iommuStrict: boolean;
  /** NESTLAB_DATA_DIR: where the last configuration is kept across a restart; null: not kept. */
  readonly dataDir: string | null;
}

export function dom0SettingsFromEnv(env: NodeJS.ProcessEnv = process.env): Dom0Settings {
  const hang = env['NESTLAB_DOM0_HANG_MS'] ?? '';
  let hangMs: number | undefined;
  if (hang === 'off') hangMs = Infinity;
  else if (/^\d+$/.test(hang) && Number(hang) > 0) hangMs = Number(hang);
  else if (hang !== '')
    throw new ConfigError(
      'NESTLAB_DOM0_HANG_MS',
      `${JSON.stringify(hang)} is not a positive integer or "off"`,
    );
  const strict = env['NESTLAB_IOMMU_STRICT'] ?? '';
  if (!['', '0', '1'].includes(strict))
    throw new ConfigError('NESTLAB_IOMMU_STRICT', `${JSON.stringify(strict)} is not 1 or 0`);
  const dir = env['NESTLAB_DATA_DIR'] ?? '';
  return {
    ...(hangMs !== undefined ? { hangMs } : {}),
    iommuStrict: strict === '1',
    dataDir: dir === '' ? null : resolve(dir),
  };
}
