import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { defaultConfiguration } from '../config.js';
import { SavedStateError, StateFile, stateFilePath } from './state-file.js';

describe('StateFile', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nestlab-state-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('round-trips the configuration and frame grants; the last save wins; no temp file left', async () => {
    const f = new StateFile(stateFilePath(dir, 's1'));
    assert.equal(await f.load(), null, 'none before the first save');
    const config = defaultConfiguration();
    await Promise.all([
      f.save({ config, frames: {} }),
      f.save({ config, frames: { '1': [{ first: 16, count: 4 }] } }),
    ]);
    assert.deepEqual(await f.load(), { config, frames: { '1': [{ first: 16, count: 4 }] } });
    assert.deepEqual(await readdir(dir), ['s1-l0-state.json']);
    await f.remove();
    assert.equal(await f.load(), null);
  });

  it('refuses a file that is not a saved state, naming what is wrong', async () => {
    const path = stateFilePath(dir, 's2');
    const f = new StateFile(path);
    await writeFile(path, '{"config": {"ramBytes": 12}}');
    await assert.rejects(f.load(), SavedStateError);
    await writeFile(path, 'not json');
    await assert.rejects(f.load(), /not JSON/);
    await writeFile(path, JSON.stringify({ config: defaultConfiguration(), frames: { '1': 'x' } }));
    await assert.rejects(f.load(), /frames of dom1/);
  });
});
