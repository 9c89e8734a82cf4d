// The restart contract: the lab SIGKILLs the real l0 process and respawns it
// with the same env, without configuring it again. It must come back in its
// last configuration, with guest RAM, CPU frame grants and every FLUSHed
// write intact, and its device in reset state; unflushed writes may be lost
// (here they are: the write cache lived in the killed process).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { CpuFrames, FaultControl, L0Configure, MemAccess, Ping } from '@nestlab/protocol';
import type { Requester } from '@nestlab/protocol';
import { FeatureSet, VIRTIO_BLK_F, VIRTIO_BLK_S, VIRTIO_BLK_T, VIRTIO_F } from '@nestlab/virtio';
import { RingImage } from '@nestlab/virtio/testing';
import { freePort, startNatsServer, waitFor, type NatsServerHandle } from '@nestlab/testing';
import { defaultConfiguration } from '../config.js';
import { blkBuffers, pattern } from '../testing/blk-helpers.js';
import { TestDriver } from '../testing/driver.js';
import { startClient, type L0Client } from '../testing/harness.js';

const SERVER = fileURLToPath(new URL('../server.js', import.meta.url));
const STACK = 'crash';
const MiB = 1 << 20;

describe('crash and respawn of the l0 process (SIGKILL, same env, no re-configure)', () => {
  let nats: NatsServerHandle;
  let c: L0Client;
  let dataDir: string;
  let port = 0;
  const children: ChildProcess[] = [];

  /** Spawns server.js as the lab would; resolves once it answers Ping; `out` collects its logs. */
  const spawnL0 = async (env: Record<string, string> = {}) => {
    let out = '';
    const proc = spawn(process.execPath, [SERVER], {
      env: {
        ...process.env,
        NATS_URL: nats.url,
        NESTLAB_STACK: STACK,
        NESTLAB_DATA_DIR: dataDir,
        ADMIN_PORT: String(port),
        LOG_LEVEL: 'warn',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    proc.stdout?.on('data', (b: Buffer) => (out += b.toString('utf8')));
    proc.stderr?.on('data', (b: Buffer) => (out += b.toString('utf8')));
    children.push(proc);
    await waitFor('l0 ready', async () => {
      if (proc.exitCode !== null) throw new Error(`l0 exited ${proc.exitCode}: ${out}`);
      const r = await c.request(Ping.l0, { from: 'test' }, { timeoutMs: 500 });
      return r.head.ready && r.head.pid === proc.pid ? true : undefined;
    });
    return { proc, out: () => out };
  };
  const kill9 = async (proc: ChildProcess) => {
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGKILL');
    await exited;
  };
  /** A driver that (re)initializes the device: queue 0 on a fresh ring of 8. */
  const driver = async () => {
    const d = new TestDriver(c);
    await d.negotiate(FeatureSet.of(VIRTIO_F.VERSION_1, VIRTIO_BLK_F.FLUSH));
    const ring = new RingImage(d.mem, { size: 8, base: 0x10000n });
    await d.start(ring);
    return { d, ring };
  };
  /** One request, kicked and completed; returns its status byte. */
  const io = async (
    r: { d: TestDriver; ring: RingImage },
    type: number,
    sector: bigint,
    data?: Uint8Array,
  ): Promise<number | undefined> => {
    const buf = 0x21000n;
    if (data) r.d.mem.write(buf, data);
    r.ring.addChain(
      blkBuffers(r.d.mem, {
        type,
        sector,
        header: 0x20000n,
        data:
          type === VIRTIO_BLK_T.FLUSH
            ? []
            : [{ addr: buf, len: 4096, writable: type === VIRTIO_BLK_T.IN }],
        status: 0x20100n,
      }),
    );
    await r.d.kick();
    return (await r.d.read(0x20100n, 1))[0];
  };
  const readSector = async (r: { d: TestDriver; ring: RingImage }, sector: bigint) => {
    assert.equal(await io(r, VIRTIO_BLK_T.IN, sector), VIRTIO_BLK_S.OK);
    return r.d.read(0x21000n, 4096);
  };
  const cpu = (requester: Requester, op: 'read' | 'write', addr: bigint, data?: Uint8Array) =>
    c.request(
      MemAccess,
      { requester, ops: [{ op, addr: `0x${addr.toString(16)}`, len: data?.byteLength ?? 4096 }] },
      data ? { data } : {},
    );

  before(async () => {
    nats = await startNatsServer();
    dataDir = await mkdtemp(join(tmpdir(), 'nestlab-l0-crash-'));
    c = await startClient(nats.url, STACK);
  });
  after(async () => {
    for (const p of children) if (p.exitCode === null && p.signalCode === null) await kill9(p);
    await c?.stop();
    await nats?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('comes back configured, device in reset, RAM + frames + FLUSHed data kept, unflushed lost', async () => {
    port = await freePort(); // the same admin port for the respawn, as the lab does
    const first = await spawnL0();
    const dev = defaultConfiguration().devices[0];
    assert.ok(dev);
    // Not the default configuration, so a respawn that fell back to it would show.
    await c.request(L0Configure, {
      ramBytes: 1 << 30,
      devices: [{ ...dev, queueSizeMax: 64, diskBytes: 8 * MiB, freshDisk: true }],
    });
    await c.request(CpuFrames, { domain: 1, ranges: [{ first: 0x100, count: 4 }] });
    const ramData = pattern(4096, 77);
    await cpu({ kind: 'cpu', domain: 1 }, 'write', 0x100000n, ramData);
    const r = await driver();
    const flushed = pattern(4096, 1);
    const unflushed = pattern(4096, 2);
    assert.equal(await io(r, VIRTIO_BLK_T.OUT, 100n, flushed), VIRTIO_BLK_S.OK);
    assert.equal(await io(r, VIRTIO_BLK_T.FLUSH, 0n), VIRTIO_BLK_S.OK);
    assert.equal(await io(r, VIRTIO_BLK_T.OUT, 200n, unflushed), VIRTIO_BLK_S.OK);
    assert.deepEqual(await readSector(r, 200n), unflushed, 'served from the write cache');
    assert.notEqual((await r.d.state()).status, 0);
    await kill9(first.proc);

    const second = await spawnL0();
    const st = await r.d.state();
    assert.equal(st.status, 0, 'device in reset state');
    assert.equal(st.queues[0]?.enabled, false);
    assert.equal(st.queues[0]?.size, 64, 'the last configuration, not the default (256)');
    // Guest RAM and dom1's grant survived: dom1's CPU may still read its page.
    const back = await cpu({ kind: 'cpu', domain: 1 }, 'read', 0x100000n);
    assert.deepEqual(Uint8Array.from(back.data), ramData);
    await assert.rejects(cpu({ kind: 'cpu', domain: 2 }, 'read', 0x100000n), {
      code: 'ACCESS_DENIED',
    });
    // The driver notices the reset and re-initializes; the disk is as FLUSH left it.
    const again = await driver();
    assert.deepEqual(await readSector(again, 100n), flushed);
    assert.ok(
      (await readSector(again, 200n)).every((b) => b === 0),
      'unflushed write lost',
    );
    assert.match(second.out(), /respawned: last configuration restored/);

    // Domain faults are reachable on the real control subject.
    const inject = await c.request(FaultControl.l0.inject, { kind: 'device-reset' });
    assert.equal(inject.head.armed, 0);
    const list = await c.request(FaultControl.l0.list, {});
    assert.deepEqual(
      list.head.domain.map((e) => e.kind),
      ['device-reset'],
    );
    assert.equal((await again.d.state()).status, 0);
    await assert.rejects(c.request(FaultControl.l0.inject, { kind: 'p2m-change' }), {
      code: 'FAULT_KIND_UNSUPPORTED',
    });
    await kill9(second.proc);
  });

  it('NESTLAB_L0_UNSAFE_FLUSH=1: FLUSH says OK, a SIGKILL still loses the data (and it warns)', async () => {
    port = await freePort();
    const unsafe = await spawnL0({ NESTLAB_L0_UNSAFE_FLUSH: '1' });
    assert.match(unsafe.out(), /NESTLAB_L0_UNSAFE_FLUSH=1/);
    const dev = defaultConfiguration().devices[0];
    assert.ok(dev);
    await c.request(L0Configure, { ramBytes: 1 << 30, devices: [{ ...dev, freshDisk: true }] });
    const r = await driver();
    assert.equal(await io(r, VIRTIO_BLK_T.OUT, 8n, pattern(4096, 3)), VIRTIO_BLK_S.OK);
    assert.equal(await io(r, VIRTIO_BLK_T.FLUSH, 0n), VIRTIO_BLK_S.OK);
    await kill9(unsafe.proc);
    const safe = await spawnL0();
    const again = await driver();
    assert.ok(
      (await readSector(again, 8n)).every((b) => b === 0),
      'acknowledged, yet lost',
    );
    await kill9(safe.proc);
  });

  it('refuses a bad setting at start: one line, exit code 2', async () => {
    const proc = spawn(process.execPath, [SERVER], {
      env: { ...process.env, NATS_URL: nats.url, NESTLAB_L0_RAM_BACKING: 'swap' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    proc.stderr?.on('data', (b: Buffer) => (err += b.toString('utf8')));
    const code = await new Promise((r) => proc.once('exit', r));
    assert.equal(code, 2);
    assert.match(err, /NESTLAB_L0_RAM_BACKING=swap: want file or anon/);
  });
});
