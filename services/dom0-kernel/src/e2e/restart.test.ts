// dom0 restarted with the same data dir (the lab's SIGKILL + respawn): it
// re-applies its last configuration by itself and probes the device again,
// so the next JobRun works without stack.configure or DriverProbe. A state
// file that does not parse is ignored, never a crash.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { IoReport, Workload } from '@nestlab/protocol';
import { waitFor } from '@nestlab/testing';
import { FeatureSet, VIRTIO_F } from '@nestlab/virtio';
import { AppHarness, type Scenario } from '../testing/app-harness.js';
import { shuffledP2m } from '../testing/xen-double.js';

const P2M = shuffledP2m(0x20000, 1024, 0x40000);
const OFFER = FeatureSet.of(VIRTIO_F.VERSION_1, VIRTIO_F.INDIRECT_DESC);
const W: Workload = {
  rw: 'write',
  bs: 4096,
  iodepth: 2,
  ios: 4,
  seed: 5,
  verify: true,
  deadlineMs: 5000,
  spanBytes: 4 * 4096,
};

interface State {
  driver: {
    config: { policy: string; queueSize: number; wanted: string };
    probe: { ok: boolean } | null;
  };
  restored: { from: string; probe: string } | null;
}
const state = (app: AppHarness) => app.mod.state?.() as State;

async function runServed(app: AppHarness, s: Scenario, w: Workload): Promise<IoReport> {
  let done = false;
  const job = app.job(w).finally(() => (done = true));
  while (!done) {
    if (s.device.pending() > 0) {
      await s.device.serveOne();
      s.device.interrupt(app.h.peer, s.xen.ports.queue);
    } else await new Promise((r) => setTimeout(r, 3));
  }
  return job;
}

describe('dom0 restarted with the same data dir', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nestlab-dom0-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('re-applies its last configuration and probes again; the next job runs', async () => {
    const first = await AppHarness.start({ dataDir: dir, hangMs: 60_000 });
    const wanted = FeatureSet.of(VIRTIO_F.VERSION_1, VIRTIO_F.INDIRECT_DESC);
    try {
      const s = await first.scenario({ offer: OFFER }, P2M);
      await first.configure({ generation: 'modern', policy: 'xen-swiotlb', wanted, queueSize: 16 });
      assert.equal((await first.probe()).ok, true);
      assert.equal((await runServed(first, s, W)).completed, 4);
    } finally {
      await first.close();
    }
    const saved = JSON.parse(await readFile(join(dir, 'dom0-kernel.ut.json'), 'utf8')) as {
      configure: { policy: string; queueSize: number };
      probed: boolean;
    };
    assert.deepEqual(
      {
        policy: saved.configure.policy,
        queueSize: saved.configure.queueSize,
        probed: saved.probed,
      },
      { policy: 'xen-swiotlb', queueSize: 16, probed: true },
    );

    // The respawn: same data dir, nobody sends configure or probe. L0 and Xen answer a bit later.
    const second = await AppHarness.start({ dataDir: dir, hangMs: 60_000 });
    try {
      const s = await second.scenario({ offer: OFFER }, P2M);
      await waitFor(
        'restored and probed',
        () => (state(second).restored?.probe === 'ok' ? true : undefined),
        10_000,
      );
      const cfg = state(second).driver.config;
      assert.deepEqual(
        { policy: cfg.policy, queueSize: cfg.queueSize, wanted: cfg.wanted },
        { policy: 'xen-swiotlb', queueSize: 16, wanted: wanted.toHex() },
      );
      assert.ok(s.l0.status & 4, 'the device was initialized again (DRIVER_OK)');
      const r = await runServed(second, s, W);
      assert.deepEqual({ completed: r.completed, failed: r.failed }, { completed: 4, failed: 0 });
    } finally {
      await second.close();
    }
  });

  it('a state file that does not parse is ignored: the service starts unconfigured', async () => {
    const bad = await mkdtemp(join(tmpdir(), 'nestlab-dom0-bad-'));
    try {
      await writeFile(
        join(bad, 'dom0-kernel.ut.json'),
        '{"configure": {"policy": "warp"}, "probed": 1',
      );
      const app = await AppHarness.start({ dataDir: bad, hangMs: 60_000 });
      try {
        await new Promise((r) => setTimeout(r, 100));
        assert.equal(state(app).restored, null);
        await assert.rejects(app.job(W), /NOT_READY/);
      } finally {
        await app.close();
      }
    } finally {
      await rm(bad, { recursive: true, force: true });
    }
  });
});
