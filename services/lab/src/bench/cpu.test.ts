import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cpuPerIo, processCpuUs, sampleCpu } from './cpu.js';

describe('bench CPU accounting', () => {
  it('reads a process CPU time from /proc and charges the difference to the I/Os', () => {
    const before = sampleCpu([{ name: 'me', pid: process.pid }]);
    // Burn some CPU in this process: its own counter must move.
    const until = Date.now() + 120;
    let x = 0;
    while (Date.now() < until) x += Math.sqrt(x + 1);
    const after = sampleCpu([{ name: 'me', pid: process.pid }]);
    assert.ok(x > 0);
    const per = cpuPerIo(before, after, 10);
    assert.ok(per['me']! >= 2_000, `120 ms of work over 10 I/Os, got ${per['me']} us each`);
  });

  it('says nothing for a process that is not there', () => {
    assert.equal(processCpuUs(undefined), null);
    assert.equal(processCpuUs(2 ** 22 + 12345), null);
    const none = sampleCpu([{ name: 'gone', pid: undefined }]);
    assert.deepEqual(cpuPerIo(none, none, 5), {});
  });
});
