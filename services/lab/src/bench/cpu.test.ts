import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cpuPerIo, processCpuUs, sampleCpu } from './cpu.js';

/** Spins until this process has had `ms` of CPU (by its own count, not the clock: machines are shared). */
function burnCpuMs(ms: number): number {
  const from = process.cpuUsage();
  let x = 0;
  for (;;) {
    for (let i = 0; i < 10_000; i++) x += Math.sqrt(x + 1);
    const { user, system } = process.cpuUsage(from);
    if (user + system >= ms * 1000) return x;
  }
}

describe('bench CPU accounting', () => {
  it('reads a process CPU time from /proc and charges the difference to the I/Os', () => {
    const before = sampleCpu([{ name: 'me', pid: process.pid }]);
    // Burn some CPU in this process: its own counter must move.
    const x = burnCpuMs(120);
    const after = sampleCpu([{ name: 'me', pid: process.pid }]);
    assert.ok(x > 0);
    const per = cpuPerIo(before, after, 10);
    assert.ok(per['me']! >= 2_000, `120 ms of work over 10 I/Os, got ${per['me']} us each`);
  });

  it("agrees with the kernel's own account of this process (getrusage)", () => {
    const fromProc = processCpuUs(process.pid)!;
    const rusage = process.cpuUsage();
    const x = burnCpuMs(200);
    const procSpent = processCpuUs(process.pid)! - fromProc;
    const { user, system } = process.cpuUsage(rusage);
    assert.ok(x > 0);
    // Two views of the same threads' CPU time; a clock tick (10 ms) apart at most, plus slack.
    assert.ok(
      Math.abs(procSpent - (user + system)) <= 25_000,
      `/proc says ${Math.round(procSpent)} us, getrusage ${user + system} us`,
    );
  });

  it('says nothing for a process that is not there', () => {
    assert.equal(processCpuUs(undefined), null);
    assert.equal(processCpuUs(2 ** 22 + 12345), null);
    const none = sampleCpu([{ name: 'gone', pid: undefined }]);
    assert.deepEqual(cpuPerIo(none, none, 5), {});
  });
});
