import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '@nestlab/service-kit';
import { dom0SettingsFromEnv } from './config.js';

const server = fileURLToPath(new URL('./server.js', import.meta.url));

describe('dom0 settings from the environment', () => {
  it('reads the hang timeout, IOMMU strictness and data dir', () => {
    assert.deepEqual(dom0SettingsFromEnv({}), { iommuStrict: false, dataDir: null });
    const s = dom0SettingsFromEnv({
      NESTLAB_DOM0_HANG_MS: '250',
      NESTLAB_IOMMU_STRICT: '1',
      NESTLAB_DATA_DIR: '/tmp/d',
    });
    assert.deepEqual(s, { hangMs: 250, iommuStrict: true, dataDir: '/tmp/d' });
    assert.equal(dom0SettingsFromEnv({ NESTLAB_DOM0_HANG_MS: 'off' }).hangMs, Infinity);
  });

  it('names the variable of a bad value', () => {
    for (const [variable, value] of [
      ['NESTLAB_DOM0_HANG_MS', '0'],
      ['NESTLAB_DOM0_HANG_MS', '1.5s'],
      ['NESTLAB_IOMMU_STRICT', 'yes'],
    ] as const) {
      assert.throws(
        () => dom0SettingsFromEnv({ [variable]: value }),
        (e: unknown) => e instanceof ConfigError && e.variable === variable,
        `${variable}=${value}`,
      );
    }
  });

  it('the service exits 2 with one line naming the variable, before connecting anywhere', () => {
    for (const variable of ['NESTLAB_DOM0_HANG_MS', 'NESTLAB_IOMMU_STRICT']) {
      const r = spawnSync(process.execPath, [server], {
        // A port nothing listens on: a service that got past its config would hang, not exit.
        env: { ...process.env, [variable]: 'bogus', NATS_URL: 'nats://127.0.0.1:1' },
        encoding: 'utf8',
        timeout: 20_000,
      });
      assert.equal(r.status, 2, `${variable}: exit ${r.status}, stderr ${r.stderr}`);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0]!, new RegExp(`^dom0-kernel: invalid configuration: ${variable}: `));
    }
  });
});
