// TestFleet against a real service build: restart() replaces the process by
// a new one on the same data directory, and stop() leaves nothing behind,
// however far start() got.
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { describe, it } from 'node:test';
import { IommuConfigure, IommuLookup, Ping } from '@nestlab/protocol';
import { call } from './nats-call.js';
import { isAlive as alive } from './process-control.js';
import { TestFleet } from './test-fleet.js';

describe('TestFleet', () => {
  it('names what is missing before start(), and stop() then does nothing', async () => {
    const fleet = new TestFleet({ stack: 'tf-idle', services: ['iommu'], dataDir: true });
    assert.throws(() => fleet.nc, /test fleet: nc is not started/);
    assert.throws(() => fleet.service('iommu'), /test fleet: iommu is not started/);
    assert.throws(() => fleet.dataDir, /dataDir/);
    await fleet.stop();
  });

  it('restarts a service as a new process on the same data directory; stop() removes it all', async () => {
    const fleet = new TestFleet({ stack: 'tf', services: ['iommu'], dataDir: true });
    try {
      await fleet.start();
      const first = (await call(fleet.nc, 'tf', Ping.iommu, { from: 'test' })).pid;
      assert.equal(first, fleet.service('iommu').pid);
      const dir = fleet.dataDir;
      await call(fleet.nc, 'tf', IommuConfigure, { mode: 'translate' });
      const second = await fleet.restart('iommu');
      assert.equal(alive(first), false, 'the killed process is gone');
      assert.notEqual(second.pid, first);
      assert.equal((await call(fleet.nc, 'tf', Ping.iommu, { from: 'test' })).pid, second.pid);
      // The mode came back from the data directory: the respawn got the same one.
      const { mode } = await call(fleet.nc, 'tf', IommuLookup, {
        bdf: '0000:00:04.0',
        iova: '0x0',
      });
      assert.equal(mode, 'translate');
      assert.ok(readdirSync(dir).length > 0);
      await fleet.stop();
      assert.equal(alive(second.pid!), false);
      assert.equal(existsSync(dir), false);
    } finally {
      await fleet.stop();
    }
  });
});
