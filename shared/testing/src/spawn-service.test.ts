// The harness never leaves a service behind: not when a readiness wait is cut
// short (a `before` hook timing out under load), not when the test process
// itself is SIGKILLed.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startNatsServer, type NatsServerHandle } from '@nestlab/nats-runner';
import { freePort } from './free-port.js';
import { isAlive as alive } from './process-control.js';
import { spawnService, spawnedCount, stopSpawned } from './spawn-service.js';
import { waitFor } from './wait.js';

// A real service from the monorepo (built before the tests run).
const IOMMU = fileURLToPath(new URL('../../../services/iommu/dist/server.js', import.meta.url));
const HARNESS = fileURLToPath(new URL('./index.js', import.meta.url));

describe('spawnService: every child is reachable for teardown', () => {
  let nats: NatsServerHandle;
  before(async () => {
    nats = await startNatsServer();
  });
  after(async () => {
    await stopSpawned();
    await nats?.stop();
  });

  it('stopSpawned stops a child still waiting for readiness', async () => {
    // No nats-server at this port: the service never becomes ready.
    const nowhere = `nats://127.0.0.1:${await freePort()}`;
    const pending = spawnService(IOMMU, nowhere, 'harness');
    const outcome = pending.then(
      () => 'ready',
      (err: unknown) => (err as Error).message,
    );
    await waitFor('the child registered', () => (spawnedCount() === 1 ? true : undefined));
    await stopSpawned();
    assert.equal(spawnedCount(), 0);
    assert.notEqual(await outcome, 'ready', 'the stopped child never became ready');
  });

  it('a child exits by itself when the test process is SIGKILLed', async () => {
    const script = `
      const { spawnService } = await import(${JSON.stringify(HARNESS)});
      const s = await spawnService(${JSON.stringify(IOMMU)}, ${JSON.stringify(nats.url)}, 'harness');
      process.stdout.write(String(s.pid) + '\\n');
      setInterval(() => {}, 1000);
    `;
    const parent = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    parent.stdout?.on('data', (c: Buffer) => (out += c.toString('utf8')));
    const pid = await waitFor(
      'the service ready under the parent',
      () => (/^\d+\n/.test(out) ? Number(out.trim()) : undefined),
      60_000,
    );
    assert.ok(alive(pid));
    parent.kill('SIGKILL');
    const t0 = Date.now();
    await waitFor('the orphaned service gone', () => (alive(pid) ? undefined : true));
    assert.ok(Date.now() - t0 < 5000, `gone after ${Date.now() - t0} ms`);
  });
});
