// Killing and respawning one service of a real fleet, and restarting its
// nats-server on the same port: the same env, port and log file, and the
// fleet answers again without the lab re-sending anything.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { before, describe, it } from 'node:test';
import { Ping } from '@nestlab/protocol';
import type { Bus } from '@nestlab/service-kit';
import type { Fleet } from './fleet.js';
import { suiteFleet } from '../testing/suite-fleet.js';

const STACK = 'rs';

/** Pings a service until it answers or the deadline passes (NATS may be reconnecting). */
async function pingUntil(bus: Bus, token: keyof typeof Ping, deadlineMs = 20_000) {
  const until = Date.now() + deadlineMs;
  let last: unknown;
  while (Date.now() < until) {
    try {
      return (await bus.request(Ping[token], { from: 'restart-test' }, { timeoutMs: 500 })).head;
    } catch (err) {
      last = err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`${token} did not answer within ${deadlineMs} ms: ${String(last)}`);
}

describe('fleet kill/respawn and nats-server restart', () => {
  const suite = suiteFleet(STACK, { auth: true, logLevel: 'info' });
  let fleet: Fleet;
  let bus: Bus;

  before(() => {
    bus = suite.bus();
    fleet = suite.fleet();
  });
  it('kills one service with SIGKILL and respawns it on the same port, appending its log', async () => {
    const before = fleet.services.find((p) => p.service.token === 'xen')!;
    const logBefore = readFileSync(before.logFile, 'utf8');
    assert.equal(await fleet.kill('xen'), 'SIGKILL');
    await assert.rejects(fetch(`${before.adminUrl}/readyz`), 'nothing listens while it is down');
    const after = await fleet.respawn('xen');
    assert.notEqual(after.process.pid, before.process.pid);
    assert.equal(after.adminUrl, before.adminUrl, 'same admin port');
    assert.equal(after.logFile, before.logFile, 'same log file');
    assert.equal(
      fleet.services.find((p) => p.service.token === 'xen'),
      after,
      'the fleet holds the new process',
    );
    assert.equal((await fetch(`${after.adminUrl}/readyz`)).status, 200);
    assert.equal((await pingUntil(bus, 'xen')).ready, true, 'it is back on NATS with its own user');
    const logAfter = readFileSync(after.logFile, 'utf8');
    assert.ok(logAfter.startsWith(logBefore) && logAfter.length > logBefore.length, 'appended');
  });

  it('refuses unknown services and a respawn of one still running, with typed errors', async () => {
    await assert.rejects(fleet.kill('qemu'), { code: 'UNKNOWN_SERVICE' });
    await assert.rejects(fleet.respawn('l0'), { code: 'SERVICE_RUNNING' });
  });

  it('restarts nats-server on the same port; every service and the lab reconnect', async () => {
    assert.ok(fleet.nats);
    const pid = fleet.nats.process.pid;
    await fleet.nats.restart(200);
    assert.notEqual(fleet.nats.process.pid, pid);
    for (const token of ['l0', 'xen', 'dom0', 'iommu'] as const)
      assert.equal((await pingUntil(bus, token)).ready, true, token);
  });
});
