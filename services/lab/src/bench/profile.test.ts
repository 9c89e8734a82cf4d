import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { profileNodeArgs, readProfiles } from './profile.js';

describe('bench --profile', () => {
  it('names the hot function of a real node --cpu-prof profile of its main thread, matched to its process', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nestlab-prof-'));
    try {
      const script = join(dir, 'hot.mjs');
      writeFileSync(
        script,
        [
          "import { Worker } from 'node:worker_threads';",
          // A worker thread (as services have) writes its own profile; it is not the service's.
          'const worker = new Worker(',
          "  'function workerWhirl(){const e=Date.now()+200;let x=0;while(Date.now()<e)x+=Math.sqrt(x+1);}workerWhirl();',",
          '  { eval: true },',
          ');',
          'function spinTheWheel(ms) {',
          '  const end = Date.now() + ms; let x = 0;',
          '  while (Date.now() < end) x += Math.sqrt(x + 1);',
          '  return x;',
          '}',
          'spinTheWheel(400);',
          "await new Promise((done) => worker.on('exit', done));",
        ].join('\n'),
      );
      const r = spawnSync(process.execPath, [...profileNodeArgs(dir), script]);
      assert.equal(r.status, 0, String(r.stderr));
      const found = readProfiles(dir, new Map([[r.pid!, 'hot']]));
      const hot = found['hot'];
      assert.ok(hot, 'the profile of that pid was read');
      assert.ok(hot.busySamples > 100, `${hot.busySamples} busy samples`);
      assert.equal(hot.top[0]?.fn, 'spinTheWheel');
      assert.match(hot.top[0]?.where ?? '', /hot\.mjs:6$/);
      assert.ok(hot.top[0]!.selfPct > 50, `${hot.top[0]!.selfPct}% in the hot function`);
      assert.deepEqual(readProfiles(dir, new Map([[1, 'other']])), {}, 'other pids: nothing');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
