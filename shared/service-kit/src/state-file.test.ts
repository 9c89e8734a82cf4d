import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { writeFileAtomic, writeFileAtomicSync } from './state-file.js';
import { dataDirFromEnv, loadConfig } from './config.js';

describe('state files', () => {
  it('replaces a file whole, creating its directory, leaving no temp file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nestlab-state-'));
    const path = join(dir, 'deep', 'x.json');
    writeFileAtomicSync(path, '{"v":1}');
    assert.equal(readFileSync(path, 'utf8'), '{"v":1}');
    await writeFileAtomic(path, new TextEncoder().encode('{"v":2}'));
    assert.equal(readFileSync(path, 'utf8'), '{"v":2}');
    assert.deepEqual(readdirSync(join(dir, 'deep')), ['x.json']);
  });

  it('keeps the old file when the new one cannot be written', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nestlab-state-'));
    const path = join(dir, 'x.json');
    writeFileSync(path, 'old');
    // The rename fails: the target became a directory's child of a file.
    assert.throws(() => writeFileAtomicSync(join(path, 'y'), 'new'));
    assert.equal(readFileSync(path, 'utf8'), 'old');
  });
});

describe('NESTLAB_DATA_DIR', () => {
  it('is optional, made absolute, and a bad value names the variable', () => {
    assert.equal(dataDirFromEnv({}), undefined);
    assert.equal(dataDirFromEnv({ NESTLAB_DATA_DIR: '' }), undefined);
    assert.equal(dataDirFromEnv({ NESTLAB_DATA_DIR: '/var/x' }), '/var/x');
    assert.equal(dataDirFromEnv({ NESTLAB_DATA_DIR: 'rel' }), join(process.cwd(), 'rel'));
    assert.equal(loadConfig('x', 1, { NESTLAB_DATA_DIR: '/d' }).dataDir, '/d');
    assert.throws(() => loadConfig('x', 1, { NESTLAB_DATA_DIR: ' /d' }), {
      code: 'CONFIG_INVALID',
      variable: 'NESTLAB_DATA_DIR',
    });
  });
});
