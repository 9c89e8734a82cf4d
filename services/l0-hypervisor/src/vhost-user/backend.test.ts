// The vhost-user back-end against a fake front-end over a real unix socket
// with real descriptors: the handshake, one virtio-blk write served through a
// file-backed memory table with FIFO kick/call, and bad messages closing the
// connection with a typed error while the process carries on.
import assert from 'node:assert/strict';
import { closeSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { trace } from '@opentelemetry/api';
import { MetricsRegistry } from '@nestlab/service-kit';
import { VIRTIO_F, VRING_DESC_F } from '@nestlab/virtio';
import { DmaLog } from '../dma/dma-log.js';
import { createL0Metrics } from '../metrics.js';
import { VhostUserBlkBackend } from './backend.js';
import { FakeFrontEnd, concat, fifoFd, u32s, u64s } from './fake-front-end.js';
import { FLAG, REQ, VHOST_USER_F_PROTOCOL_FEATURES } from './protocol.js';
import { serveOnce, type Served } from './serve.js';

const DISK_BYTES = 1 << 20;
const RAM_BYTES = 1 << 20;
/** Where the fake QEMU "maps" guest RAM in its own address space. */
const USER_BASE = 0x7f00_0000_0000n;

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nestlab-vhost-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

let n = 0;
async function start(iommu: 'none' | 'virtio' = 'none'): Promise<{
  backend: VhostUserBlkBackend;
  served: Served;
  fe: FakeFrontEnd;
  log: DmaLog;
  disk: string;
  registry: MetricsRegistry;
  lines: string[];
}> {
  const socket = join(dir, `s${++n}.sock`);
  const disk = join(dir, `disk${n}.img`);
  const log = new DmaLog();
  const registry = new MetricsRegistry();
  const lines: string[] = [];
  const backend = await VhostUserBlkBackend.create({
    diskPath: disk,
    diskBytes: DISK_BYTES,
    queueSizeMax: 8,
    iommu,
    tracer: trace.getTracer('test'),
    metrics: createL0Metrics(registry),
    dmaLog: log,
    log: (l) => lines.push(l),
  });
  const served = await serveOnce(socket, backend);
  const fe = await FakeFrontEnd.connect(socket);
  return { backend, served, fe, log, disk, registry, lines };
}

async function stop(s: { backend: VhostUserBlkBackend; served: Served; fe: FakeFrontEnd }) {
  s.fe.close();
  s.served.close();
  await s.served.done;
  await s.backend.close();
}

describe('vhost-user back-end', () => {
  it('answers the handshake: features, protocol features, virtio-blk config', async () => {
    const s = await start();
    try {
      s.fe.send(REQ.GET_FEATURES);
      const f = (await s.fe.reply())!.payload.readBigUInt64LE(0);
      assert.ok(f & (1n << BigInt(VIRTIO_F.VERSION_1)));
      assert.ok(f & (1n << BigInt(VHOST_USER_F_PROTOCOL_FEATURES)));
      s.fe.send(REQ.GET_PROTOCOL_FEATURES);
      assert.equal((await s.fe.reply())!.payload.readBigUInt64LE(0), 1n << 9n, 'CONFIG only');
      s.fe.send(REQ.GET_CONFIG, concat(u32s(0, 60, 0), new Uint8Array(60)));
      const c = (await s.fe.reply())!;
      assert.equal(c.request, REQ.GET_CONFIG);
      assert.equal(c.payload.readUInt32LE(4), 60);
      assert.equal(c.payload.readBigUInt64LE(12), BigInt(DISK_BYTES / 512), 'capacity in sectors');
    } finally {
      await stop(s);
    }
  });

  it('behind a vIOMMU: offers ACCESS_PLATFORM, REPLY_ACK and BACKEND_REQ, and acks what asks for it', async () => {
    const s = await start('virtio');
    try {
      s.fe.send(REQ.GET_FEATURES);
      const f = (await s.fe.reply())!.payload.readBigUInt64LE(0);
      assert.ok(f & (1n << BigInt(VIRTIO_F.ACCESS_PLATFORM)));
      s.fe.send(REQ.GET_PROTOCOL_FEATURES);
      const pf = (await s.fe.reply())!.payload.readBigUInt64LE(0);
      assert.equal(pf, (1n << 9n) | (1n << 5n) | (1n << 3n));
      s.fe.send(REQ.SET_PROTOCOL_FEATURES, u64s(pf));
      s.fe.send(REQ.SET_OWNER, undefined, [], FLAG.VERSION | FLAG.NEED_REPLY);
      const ack = (await s.fe.reply())!;
      assert.equal(ack.request, REQ.SET_OWNER);
      assert.equal(ack.payload.readBigUInt64LE(0), 0n, 'REPLY_ACK: success');
    } finally {
      await stop(s);
    }
  });

  it('serves a virtio-blk write from guest RAM it reaches only through the fd', async () => {
    const s = await start();
    const ramPath = join(dir, 'ram');
    const ram = openSync(ramPath, 'w+');
    ftruncateSync(ram, RAM_BYTES);
    const kick = fifoFd(dir, 'kick');
    const call = fifoFd(dir, 'call');
    try {
      // A ring of 8 at 0x1000/0x2000/0x3000; header, 512 data bytes, status.
      const put = (gpa: number, b: Uint8Array) => writeSync(ram, b, 0, b.byteLength, gpa);
      const desc = (i: number, addr: number, len: number, flags: number, next: number) =>
        put(
          0x1000 + 16 * i,
          concat(
            u64s(BigInt(addr)),
            u32s(len),
            new Uint8Array(new Uint16Array([flags, next]).buffer),
          ),
        );
      put(0x4000, concat(u32s(1, 0), u64s(0n))); // VIRTIO_BLK_T_OUT, sector 0
      const data = Buffer.alloc(512, 0xa5);
      put(0x5000, data);
      put(0x6000, Uint8Array.of(0xff));
      desc(0, 0x4000, 16, VRING_DESC_F.NEXT, 1);
      desc(1, 0x5000, 512, VRING_DESC_F.NEXT, 2);
      desc(2, 0x6000, 1, VRING_DESC_F.WRITE, 0);
      put(0x2000, new Uint8Array(new Uint16Array([0, 1, 0]).buffer)); // flags, idx 1, ring[0] = head 0

      const region = u64s(0n, BigInt(RAM_BYTES), USER_BASE, 0n);
      s.fe.send(REQ.SET_OWNER);
      s.fe.send(REQ.SET_FEATURES, u64s((1n << 32n) | (1n << 30n)));
      s.fe.send(REQ.SET_MEM_TABLE, concat(u32s(1, 0), region), [ram]);
      s.fe.send(REQ.SET_VRING_NUM, u32s(0, 8));
      s.fe.send(REQ.SET_VRING_BASE, u32s(0, 0));
      const user = (gpa: number) => USER_BASE + BigInt(gpa);
      s.fe.send(
        REQ.SET_VRING_ADDR,
        concat(u32s(0, 0), u64s(user(0x1000), user(0x3000), user(0x2000), 0n)),
      );
      s.fe.send(REQ.SET_VRING_KICK, u64s(0n), [kick]);
      s.fe.send(REQ.SET_VRING_CALL, u64s(0n), [call]);
      s.fe.send(REQ.SET_VRING_ENABLE, u32s(0, 1));
      writeSync(kick, u64s(1n));

      // The call FIFO gets 8 bytes once the used element is published.
      const counter = Buffer.alloc(8);
      for (let i = 0; ; i++) {
        try {
          if (readSync(call, counter, 0, 8, null) === 8) break;
        } catch {
          // EAGAIN: not yet
        }
        assert.ok(i < 500, 'no call within 5 s');
        await new Promise((r) => setTimeout(r, 10));
      }
      const used = Buffer.alloc(8);
      readSync(ram, used, 0, 8, 0x3000);
      assert.equal(used.readUInt16LE(2), 1, 'used.idx');
      const status = Buffer.alloc(1);
      readSync(ram, status, 0, 1, 0x6000);
      assert.equal(status[0], 0, 'VIRTIO_BLK_S_OK');
      const image = await readFile(s.disk);
      assert.deepEqual(image.subarray(0, 512), data, 'the disk image holds the bytes');
      const records = s.log.page(0, 1000).records;
      assert.ok(records.length > 0);
      assert.ok(records.every((r) => r.verdict === 'direct'));
      const descRead = records.find((r) => r.what === 'desc');
      assert.equal(
        descRead?.bus,
        '0x1000',
        'the ring is at the guest-physical address, not QEMU’s',
      );
      assert.equal(descRead?.hostPhys, `0x${user(0x1000).toString(16)}`);
      assert.ok(
        s.lines.includes('vring 0 addr desc 0x1000 avail 0x2000 used 0x3000 (guest-physical)'),
        'the ring as the device addresses it, for the reference report',
      );
      // The same L0 metrics as behind the PCI transport; the call eventfd counts as the MSI.
      const m = (name: string, labels: Record<string, string> = {}) =>
        s.registry.value(`nestlab_l0_${name}`, labels);
      assert.equal(m('blk_requests_total', { type: 'out', status: '0' }), 1);
      assert.equal(m('msi_total', { vector: 'call-0' }), 1);
      assert.equal(m('dma_accesses_total', { verdict: 'direct' }), records.length);
      assert.equal(m('dma_accesses_total', { what: 'buffer' }), 3);
      // GET_VRING_BASE stops the ring and says where to resume.
      s.fe.send(REQ.GET_VRING_BASE, u32s(0, 0));
      assert.equal((await s.fe.reply())!.payload.readUInt32LE(4), 1);
    } finally {
      await stop(s);
      closeSync(ram);
    }
  });

  const bad: [string, (fe: FakeFrontEnd) => void, string][] = [
    ['a header of version 2', (fe) => fe.send(REQ.GET_FEATURES, undefined, [], 0x2), 'BAD_HEADER'],
    [
      'a reply sent to the back-end',
      (fe) => fe.send(REQ.GET_FEATURES, undefined, [], FLAG.VERSION | FLAG.REPLY),
      'BAD_HEADER',
    ],
    ['a truncated SET_VRING_NUM', (fe) => fe.send(REQ.SET_VRING_NUM, u32s(0)), 'BAD_PAYLOAD'],
    ['a vring that does not exist', (fe) => fe.send(REQ.SET_VRING_NUM, u32s(7, 8)), 'BAD_PAYLOAD'],
    [
      'a memory table of 9 regions',
      (fe) => fe.send(REQ.SET_MEM_TABLE, concat(u32s(9, 0), new Uint8Array(256))),
      'BAD_PAYLOAD',
    ],
    [
      'SET_MEM_TABLE without its fd',
      (fe) => fe.send(REQ.SET_MEM_TABLE, concat(u32s(1, 0), u64s(0n, 4096n, USER_BASE, 0n))),
      'BAD_FDS',
    ],
    [
      'a ring address no region maps',
      (fe) => fe.send(REQ.SET_VRING_ADDR, concat(u32s(0, 0), u64s(1n, 2n, 3n, 0n))),
      'UNMAPPED_ADDRESS',
    ],
    [
      'an IOTLB message of an unknown type',
      (fe) =>
        fe.send(
          REQ.IOTLB_MSG,
          concat(u64s(0x1000n, 0x1000n, USER_BASE), Uint8Array.of(3, 9), new Uint8Array(6)),
        ),
      'BAD_PAYLOAD',
    ],
    ['an unknown request', (fe) => fe.send(99), 'UNSUPPORTED_REQUEST'],
    [
      'a payload larger than any message',
      (fe) => fe.send(REQ.SET_FEATURES, new Uint8Array(4096)),
      'BAD_HEADER',
    ],
  ];
  for (const [what, send, code] of bad) {
    it(`closes the connection on ${what} (${code}), and keeps running`, async () => {
      const s = await start();
      send(s.fe);
      await s.fe.gone();
      const error = await s.served.done;
      assert.equal(error?.code, code, error?.message);
      await stop(s);
    });
  }
});
