import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/nestlab.mjs', import.meta.url));
const PKG = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

const nestlab = (bin: string, args: string[], env: NodeJS.ProcessEnv = process.env) =>
  spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env, timeout: 30_000 });

describe('nestlab --version and the bin wrapper', () => {
  it('prints the lab package version and the Node.js that runs it', () => {
    const r = nestlab(BIN, ['--version']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `nestlab ${PKG.version} (node ${process.version})\n`);
  });

  // A repo copy whose engines no Node meets: the wrapper must hand over to
  // .nestlab/node/bin/node (here a script that reports how it was started).
  const scratch = mkdtempSync(join(tmpdir(), 'nestlab-bin-'));
  after(() => rmSync(scratch, { recursive: true, force: true }));
  const repo = (name: string, projectNode?: string) => {
    const root = join(scratch, name);
    mkdirSync(join(root, 'services/lab/bin'), { recursive: true });
    writeFileSync(
      join(root, 'package.json'),
      JSON.stringify({ name: 'nestlab', engines: { node: '>=999.0.0' } }),
    );
    const bin = join(root, 'services/lab/bin/nestlab.mjs');
    copyFileSync(BIN, bin);
    if (projectNode !== undefined) {
      mkdirSync(join(root, '.nestlab/node/bin'), { recursive: true });
      writeFileSync(join(root, '.nestlab/node/bin/node'), `#!/bin/sh\n${projectNode}\n`);
      chmodSync(join(root, '.nestlab/node/bin/node'), 0o755);
    }
    return { root, bin };
  };

  it('started by an older Node, runs itself again on .nestlab/node with the same arguments', () => {
    const { root, bin } = repo(
      'reexec',
      'printf "%s\\n" "$NESTLAB_REEXEC" "${PATH%%:*}" "$@"; exit 7',
    );
    const r = nestlab(bin, ['run', 'some scenario', '--json']);
    assert.equal(r.status, 7, 'the exit code of the project Node run comes back');
    assert.deepEqual(r.stdout.trimEnd().split('\n'), [
      '1',
      join(root, '.nestlab/node/bin'),
      bin,
      'run',
      'some scenario',
      '--json',
    ]);
  });

  it('without a project Node, says which version it needs and how to get it (exit 2)', () => {
    const { bin } = repo('none');
    const r = nestlab(bin, ['up']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /needs Node\.js >=999\.0\.0, this is v\d+.*npm run setup/);
  });

  it('never loops: a project Node that is too old as well is refused', () => {
    const { bin } = repo('loop', `exec "${process.execPath}" "$@"`);
    const r = nestlab(bin, ['--version']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /needs Node\.js >=999\.0\.0.*run as .*\.nestlab\/node\/bin\/node/);
  });
});
