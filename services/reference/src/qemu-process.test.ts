import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { QemuProcess, withQemu } from './qemu-process.js';

const QEMU = 'qemu-system-x86_64';
const haveQemu = spawnSync(QEMU, ['--version'], { stdio: 'ignore' }).status === 0;
const skipNoQemu = haveQemu
  ? false
  : `${QEMU} is not installed (nestlab reference --setup installs it)`;
/** A QEMU that never finishes: no guest, CPUs paused (-S). */
const HUNG = ['-S', '-accel', 'tcg', '-nodefaults', '-display', 'none', '-M', 'pc'];
/** A stand-in with a grandchild in the same group: the group kill must take both. */
const FAMILY = ['-c', 'sleep 300 & echo started; wait'];

/** Every live (non-zombie) process whose process group is pgid. */
function groupMembers(pgid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue;
    }
    // fields after "(comm)": state ppid pgrp …
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(pgrp) === pgid && state !== 'Z') out.push(Number(name));
  }
  return out;
}

async function gone(pgid: number, ms = 5000): Promise<boolean> {
  for (const until = Date.now() + ms; Date.now() < until; await sleep(50)) {
    if (groupMembers(pgid).length === 0) return true;
  }
  return false;
}

const scratch = mkdtempSync(join(tmpdir(), 'nestlab-qemu-proc-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

describe('QemuProcess', () => {
  it('kills the whole process group, grandchildren included, at the hard timeout', async () => {
    const q = QemuProcess.start({ binary: 'sh', args: FAMILY, timeoutMs: 800 });
    assert.ok(await q.waitForLine(/started/, 5000));
    assert.ok(groupMembers(q.pid).length >= 2, 'the shell and its sleep share the group');
    const exit = await q.exited;
    assert.equal(exit.timedOut, true);
    assert.equal(exit.signal, 'SIGKILL');
    assert.ok(await gone(q.pid), `left behind: ${groupMembers(q.pid).join(', ')}`);
  });

  it('withQemu stops the process when the work throws', async () => {
    let pid = 0;
    await assert.rejects(
      withQemu({ binary: 'sh', args: FAMILY, timeoutMs: 60_000 }, async (q) => {
        pid = q.pid;
        await q.waitForLine(/started/, 5000);
        throw new Error('work failed');
      }),
      /work failed/,
    );
    assert.ok(await gone(pid), `left behind: ${groupMembers(pid).join(', ')}`);
  });

  it(
    'a hung QEMU is killed at its hard timeout and nothing remains',
    { skip: skipNoQemu },
    async () => {
      const q = QemuProcess.start({ binary: QEMU, args: HUNG, timeoutMs: 1500 });
      await sleep(300);
      assert.ok(q.running);
      const exit = await q.exited;
      assert.equal(exit.timedOut, true);
      assert.ok(await gone(q.pid), `left behind: ${groupMembers(q.pid).join(', ')}`);
    },
  );

  it('a QEMU killed from outside ends the run without hanging', { skip: skipNoQemu }, async () => {
    const q = QemuProcess.start({ binary: QEMU, args: HUNG, timeoutMs: 60_000 });
    await sleep(300);
    process.kill(q.pid, 'SIGKILL');
    const exit = await q.exited;
    assert.equal(exit.timedOut, false);
    assert.equal(exit.signal, 'SIGKILL');
    assert.equal(
      await q.waitForLine(/never/, 10_000),
      null,
      'waiting on a dead QEMU returns at once',
    );
    assert.ok(await gone(q.pid));
  });

  for (const signal of ['SIGKILL', 'SIGTERM'] as const) {
    it(`QEMU does not outlive a parent killed with ${signal}`, { skip: skipNoQemu }, async () => {
      const script = join(scratch, `parent-${signal}.mjs`);
      const lib = new URL('./qemu-process.js', import.meta.url).href;
      writeFileSync(
        script,
        `import { QemuProcess } from ${JSON.stringify(lib)};\n` +
          `const q = QemuProcess.start({ binary: ${JSON.stringify(QEMU)}, args: ${JSON.stringify(HUNG)}, timeoutMs: 600000 });\n` +
          `console.log(q.pid);\nsetInterval(() => {}, 1000);\n`,
      );
      const parent = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
      const pid = await new Promise<number>((resolve, reject) => {
        parent.stdout.setEncoding('utf8');
        parent.stdout.once('data', (d: string) => resolve(Number(d.trim())));
        parent.once('exit', () => reject(new Error('parent exited early')));
      });
      try {
        await sleep(300);
        assert.ok(groupMembers(pid).length >= 1, 'QEMU is running');
        const exited = new Promise((r) => parent.once('exit', (_c, s) => r(s)));
        parent.kill(signal);
        assert.equal(await exited, signal, 'the parent still dies of the signal');
        assert.ok(await gone(pid), `left behind: ${groupMembers(pid).join(', ')}`);
      } finally {
        for (const p of groupMembers(pid)) process.kill(p, 'SIGKILL');
        parent.kill('SIGKILL');
      }
    });
  }
});
