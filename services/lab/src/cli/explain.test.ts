// `nestlab explain` for every shipped row: the thread's sentence, quoted with
// who wrote it, then why the outcome follows; and the run's astray frames.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { BUILTIN_DIR, loadAllScenarios } from '../scenarios/load.js';

const BIN = fileURLToPath(new URL('../../bin/nestlab.mjs', import.meta.url));
const runs = mkdtempSync(join(tmpdir(), 'nestlab-explain-'));
const nestlab = (args: string[]) =>
  spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, NESTLAB_RUNS: runs },
    timeout: 30_000,
  });

describe('nestlab explain', () => {
  after(() => rmSync(runs, { recursive: true, force: true }));
  const files = loadAllScenarios([BUILTIN_DIR]);

  it('every shipped scenario names its group and quotes the thread with who said it', () => {
    for (const f of files) {
      assert.ok(f.group, `${f.id} has a group`);
      assert.ok(f.quote, `${f.id} has a quote`);
      assert.match(f.quote.who, /^(Andy Lutomirski|Rusty Russell)/, f.id);
    }
  });

  it('prints the quotation, its author, then the explanation', () => {
    for (const id of [
      'xen-pv-dom0-half-fix',
      'xen-pv-dom0-mmio-legacy',
      'bit25-qemu-device-under-xen',
      'x86-virtio-exemption-misplaced',
    ]) {
      const f = files.find((s) => s.id === id);
      assert.ok(f?.quote, id);
      const r = nestlab(['explain', id]);
      assert.equal(r.status, 0, r.stderr);
      const quoted = r.stdout.indexOf(`"${f.quote.said}"\n  — ${f.quote.who}`);
      assert.ok(quoted > 0, r.stdout);
      assert.ok(r.stdout.indexOf(f.explanation.trim().slice(0, 40)) > quoted, r.stdout);
      assert.match(r.stdout, /Not run yet here/);
      const json = JSON.parse(nestlab(['explain', id, '--json']).stdout) as {
        quote: { who: string; said: string };
        group: string;
      };
      assert.deepEqual(json.quote, f.quote);
      assert.equal(json.group, f.group);
    }
  });
});
