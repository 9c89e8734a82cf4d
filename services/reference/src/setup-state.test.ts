import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { DIR, FILE, gzipCpio } from './cpio.js';
import { ReferenceError } from './errors.js';
import { loadSetup, referenceDir } from './setup-state.js';

const scratch = mkdtempSync(join(tmpdir(), 'nestlab-ref-setup-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

describe('setup state', () => {
  it('without setup, one clear line says to run the setup', () => {
    assert.throws(
      () => loadSetup(join(scratch, 'none')),
      (e: unknown) =>
        e instanceof ReferenceError &&
        e.code === 'SETUP_NEEDED' &&
        e.kind === 'environment' &&
        /run `nestlab reference --setup` first$/.test(e.message) &&
        !e.message.includes('\n'),
    );
  });

  it('a manifest naming missing files is refused too', () => {
    const dir = join(scratch, 'stale');
    spawnSync('mkdir', ['-p', dir]);
    writeFileSync(join(dir, 'setup.json'), JSON.stringify({ vmlinuz: join(dir, 'gone') }));
    assert.throws(
      () => loadSetup(dir),
      /vmlinuz .* is missing: run `nestlab reference --setup` first/,
    );
  });

  it('the cache dir follows NESTLAB_REFERENCE_DIR, else ./.nestlab/reference', () => {
    assert.equal(referenceDir({ NESTLAB_REFERENCE_DIR: '/x/y' }, '/c'), '/x/y');
    assert.equal(referenceDir({}, '/c'), '/c/.nestlab/reference');
  });
});

describe('initramfs archive', () => {
  it(
    'is a gzip newc cpio that cpio(1) lists and extracts byte for byte',
    { skip: spawnSync('cpio', ['--version']).status === 0 ? false : 'cpio(1) not installed' },
    () => {
      const data = Buffer.from('#!/bin/sh\necho odd-length\n');
      const gz = gzipCpio([
        DIR('bin'),
        FILE('init', data, 0o755),
        FILE('bin/empty', new Uint8Array()),
      ]);
      const archive = join(scratch, 'a.cpio.gz');
      writeFileSync(archive, gz);
      const list = spawnSync('sh', ['-c', `gzip -dc ${archive} | cpio -it --quiet`], {
        encoding: 'utf8',
      });
      assert.deepEqual(list.stdout.trim().split('\n'), ['bin', 'init', 'bin/empty']);
      const out = join(scratch, 'x');
      spawnSync('mkdir', ['-p', out]);
      const ex = spawnSync('sh', ['-c', `gzip -dc ${archive} | cpio -id --quiet`], { cwd: out });
      assert.equal(ex.status, 0);
      assert.equal(spawnSync('cmp', [join(out, 'init'), '-'], { input: data }).status, 0);
      assert.equal(spawnSync('test', ['-x', join(out, 'init')]).status, 0);
    },
  );
});
