import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { L0Configure, Ping } from '@nestlab/protocol';
import { FeatureSet, VIRTIO_BLK_F, VIRTIO_BLK_S, VIRTIO_BLK_T, VIRTIO_F } from '@nestlab/virtio';
import { RingImage } from '@nestlab/virtio/testing';
import { freePort, startNatsServer, waitFor, type NatsServerHandle } from '@nestlab/testing';
import { defaultConfiguration } from '../config.js';
import { blkBuffers, pattern } from '../testing/blk-helpers.js';
import { TestDriver } from '../testing/driver.js';
import { startClient, type L0Client } from '../testing/harness.js';

const SERVER = fileURLToPath(new URL('../server.js', import.meta.url));
const STACK = 'restart';

describe('disk contents survive a SIGKILL of the l0 process after FLUSH', () => {
  let nats: NatsServerHandle;
  let c: L0Client;
  let dataDir: string;
  let child: ChildProcess | undefined;

  const startL0Process = async () => {
    const proc = spawn(process.execPath, [SERVER], {
      env: {
        ...process.env,
        NATS_URL: nats.url,
        NESTLAB_STACK: STACK,
        NESTLAB_DATA_DIR: dataDir,
        ADMIN_PORT: String(await freePort()),
        LOG_LEVEL: 'silent',
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    child = proc;
    await waitFor('l0 ready', async () => {
      const r = await c.request(Ping.l0, { from: 'test' }, { timeoutMs: 500 });
      return r.head.ready && r.head.pid === proc.pid ? true : undefined;
    });
    return proc;
  };
  const kill = async (proc: ChildProcess) => {
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGKILL');
    await exited;
  };
  /** A driver with queue 0 running on a fresh ring. */
  const ready = async () => {
    const d = new TestDriver(c);
    await d.negotiate(FeatureSet.of(VIRTIO_F.VERSION_1, VIRTIO_BLK_F.FLUSH));
    const ring = new RingImage(d.mem, { size: 8, base: 0x10000n });
    await d.start(ring);
    return { d, ring };
  };

  before(async () => {
    nats = await startNatsServer();
    dataDir = await mkdtemp(join(tmpdir(), 'nestlab-l0-restart-'));
    c = await startClient(nats.url, STACK);
  });
  after(async () => {
    if (child && child.exitCode === null) await kill(child);
    await c?.stop();
    await nats?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('writes + flushes, is killed, restarts with freshDisk false, and reads the data back', async () => {
    const data = pattern(4096, 9);
    const first = await startL0Process();
    const { d, ring } = await ready();
    d.mem.write(0x21000n, data);
    ring.addChain(
      blkBuffers(d.mem, {
        type: VIRTIO_BLK_T.OUT,
        sector: 100n,
        header: 0x20000n,
        data: [{ addr: 0x21000n, len: 4096 }],
        status: 0x20100n,
      }),
    );
    ring.addChain(
      blkBuffers(d.mem, { type: VIRTIO_BLK_T.FLUSH, header: 0x20200n, status: 0x20300n }),
    );
    await d.kick();
    assert.equal(await d.usedIdx(ring), 2);
    assert.deepEqual(await d.read(0x20100n, 1), Uint8Array.of(VIRTIO_BLK_S.OK));
    assert.deepEqual(await d.read(0x20300n, 1), Uint8Array.of(VIRTIO_BLK_S.OK));
    await kill(first);

    await startL0Process();
    const cfg = defaultConfiguration();
    const dev = cfg.devices[0];
    assert.ok(dev);
    await c.request(L0Configure, { ...cfg, devices: [{ ...dev, freshDisk: false }] });
    const again = await ready();
    again.ring.addChain(
      blkBuffers(again.d.mem, {
        type: VIRTIO_BLK_T.IN,
        sector: 100n,
        header: 0x20000n,
        data: [{ addr: 0x30000n, len: 4096, writable: true }],
        status: 0x20100n,
      }),
    );
    await again.d.kick();
    assert.deepEqual(await again.d.read(0x20100n, 1), Uint8Array.of(VIRTIO_BLK_S.OK));
    assert.deepEqual(await again.d.read(0x30000n, 4096), data);
  });
});
