import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  JsonStateFile,
  SavedStateError,
  writeFileAtomic,
  writeFileAtomicSync,
} from './state-file.js';
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

describe('JsonStateFile', () => {
  const checkCount = (v: unknown): { state: { n: number } } | { problem: string } =>
    typeof (v as { n?: unknown } | null)?.n === 'number'
      ? { state: { n: (v as { n: number }).n } }
      : { problem: 'n is not a number' };

  it('saves in call order (the last save wins), loads it back, and removes it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nestlab-state-'));
    const f = new JsonStateFile(join(dir, 'sub', 's.json'), checkCount);
    assert.equal(await f.load(), null, 'none before the first save');
    await Promise.all([1, 2, 3, 4].map((n) => f.save({ n })));
    assert.deepEqual(await f.load(), { n: 4 });
    assert.deepEqual(readdirSync(join(dir, 'sub')), ['s.json']);
    await f.remove();
    assert.equal(await f.load(), null);
  });

  it('refuses a file it cannot read, one that is not JSON, and one its check rejects', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nestlab-state-'));
    const path = join(dir, 's.json');
    const f = new JsonStateFile(path, checkCount);
    writeFileSync(path, 'not json');
    await assert.rejects(
      f.load(),
      (e) => SavedStateError.is(e, 'STATE_INVALID') && /not JSON/.test(e.message),
    );
    writeFileSync(path, '{"n":"x"}');
    await assert.rejects(f.load(), {
      code: 'STATE_INVALID',
      message: `${path}: n is not a number`,
    });
    const asDir = join(dir, 'd.json');
    mkdirSync(asDir);
    await assert.rejects(new JsonStateFile(asDir, checkCount).load(), {
      code: 'STATE_UNREADABLE',
      kind: 'transient',
    });
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
