import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CpuFrames, L0Configure, RemoteError } from '@nestlab/protocol';
import { defaultConfiguration } from '../config.js';
import { TestDriver } from '../testing/driver.js';
import { metricValue, startL0, type L0Harness } from '../testing/harness.js';

const GiB = 2 ** 30;

const KINDS = ['guest', 'input'];
/** Expects an error reply with `code`; `kindOrNote` is the expected kind, or a note for the failure message. */
const rejects = (p: Promise<unknown>, code: string, kindOrNote?: string) =>
  assert.rejects(p, (e: RemoteError) => {
    assert.ok(e instanceof RemoteError, String(e));
    assert.equal(e.code, code, `${kindOrNote ?? ''} ${e.message}`);
    if (kindOrNote && KINDS.includes(kindOrNote)) assert.equal(e.kind, kindOrNote);
    return true;
  });

describe('L0 memory over NATS: MemAccess, memslots, CpuFrames', () => {
  let h: L0Harness;
  before(async () => {
    h = await startL0();
  });
  after(() => h?.stop());

  it('configures a 4 GiB guest and replies with both memslots and the BAR', async () => {
    const cfg = defaultConfiguration();
    const r = await h.request(L0Configure, { ...cfg, ramBytes: 4 * GiB });
    assert.deepEqual(r.head.memslots, [
      { machine: '0x0', hostPhys: '0x0', bytes: 3 * GiB },
      { machine: '0x100000000', hostPhys: '0xc0000000', bytes: GiB },
    ]);
    assert.deepEqual(r.head.devices, [
      { bdf: '0000:00:04.0', bars: [{ index: 4, addr: '0xfe000000', bytes: 0x4000 }] },
    ]);
  });

  it('writes and reads RAM in op order, in one message', async () => {
    const d = new TestDriver(h);
    const out = await d.access([
      { op: 'write', addr: 0x1000n, bytes: Uint8Array.of(1, 2, 3, 4) },
      { op: 'read', addr: 0x1002n, len: 2 },
      { op: 'write', addr: 0x1002n, bytes: Uint8Array.of(9) },
      { op: 'read', addr: 0x1000n, len: 4 },
    ]);
    assert.deepEqual(out, [Uint8Array.of(3, 4), Uint8Array.of(1, 2, 9, 4)]);
  });

  it('backs only touched pages: a write at host-phys 3.9 GiB (machine 4.9 GiB) costs one page', async () => {
    const before = (h.module.state?.() as { memory: { touchedPages: number } }).memory.touchedPages;
    const d = new TestDriver(h);
    const machine = (BigInt(4 * GiB) + BigInt(Math.floor(0.9 * GiB))) & ~0xfffn;
    await d.access([{ op: 'write', addr: machine, bytes: Uint8Array.of(0xab) }]);
    const st = h.module.state?.() as { memory: { touchedPages: number; ramBytes: number } };
    assert.equal(st.memory.touchedPages, before + 1);
    assert.equal(st.memory.ramBytes, 4 * GiB);
    assert.deepEqual(await d.read(machine, 2), Uint8Array.of(0xab, 0));
    assert.deepEqual(
      await d.read(BigInt(2 * GiB), 4),
      new Uint8Array(4),
      'untouched RAM reads zeros',
    );
  });

  it('answers MEMORY_UNREACHABLE in the PCI hole outside any BAR, and past the end of RAM', async () => {
    const d = new TestDriver(h);
    await rejects(d.read(0xd000_0000n, 4), 'MEMORY_UNREACHABLE', 'guest');
    await rejects(d.read(BigInt(5 * GiB), 4), 'MEMORY_UNREACHABLE');
    await rejects(
      d.read(BigInt(3 * GiB) - 2n, 4),
      'MEMORY_UNREACHABLE',
      'a read straddling into the hole',
    );
    assert.ok(
      metricValue(h.metrics, 'nestlab_l0_cpu_access_denied_total', {
        code: 'MEMORY_UNREACHABLE',
      }) >= 3,
    );
  });

  it('names the failing op; ops before it took effect', async () => {
    const d = new TestDriver(h);
    await assert.rejects(
      d.access([
        { op: 'write', addr: 0x3000n, bytes: Uint8Array.of(7) },
        { op: 'read', addr: 0xd000_0000n, len: 1 },
      ]),
      /op 1:/,
    );
    assert.deepEqual(await d.read(0x3000n, 1), Uint8Array.of(7));
  });

  it('refuses a CPU access to frames Xen did not grant (ACCESS_DENIED), allows granted ones', async () => {
    const dom1 = new TestDriver(h, '0000:00:04.0', { kind: 'cpu', domain: 1 });
    await rejects(dom1.read(0x5000n, 4), 'ACCESS_DENIED', 'guest');
    await rejects(
      dom1.access([{ op: 'write', addr: 0x5000n, bytes: Uint8Array.of(1) }]),
      'ACCESS_DENIED',
    );
    const g = await h.request(CpuFrames, { domain: 1, ranges: [{ first: 5, count: 1 }] });
    assert.equal(g.head.frames, 1);
    await dom1.access([{ op: 'write', addr: 0x5ffen, bytes: Uint8Array.of(1, 2) }]);
    await rejects(dom1.read(0x5ffen, 4), 'ACCESS_DENIED', 'the second page is not granted');
    // Any domain may touch BARs: read the common cfg's num_queues.
    assert.deepEqual(await dom1.read(0xfe00_0012n, 2), Uint8Array.of(1, 0));
    await h.request(CpuFrames, { domain: 1, ranges: [] });
    await rejects(dom1.read(0x5000n, 1), 'ACCESS_DENIED', 'grants are replaced, not added');
  });

  it('refuses a message whose data does not match its write ops', async () => {
    const d = new TestDriver(h);
    await rejects(
      h.request(
        (await import('@nestlab/protocol')).MemAccess,
        { requester: { kind: 'xen' }, ops: [{ op: 'write', addr: '0x1000', len: 4 }] },
        { data: Uint8Array.of(1) },
      ),
      'DATA_LENGTH_MISMATCH',
      'input',
    );
    assert.deepEqual(await d.read(0x1000n, 1), Uint8Array.of(1), 'and nothing was written');
  });

  it('empties RAM and grants on reconfigure', async () => {
    await h.request(CpuFrames, { domain: 2, ranges: [{ first: 0, count: 16 }] });
    await h.request(L0Configure, defaultConfiguration());
    const d = new TestDriver(h);
    assert.deepEqual(await d.read(0x1000n, 4), new Uint8Array(4));
    await rejects(
      new TestDriver(h, '0000:00:04.0', { kind: 'cpu', domain: 2 }).read(0n, 1),
      'ACCESS_DENIED',
    );
    await rejects(d.read(BigInt(4 * GiB), 1), 'MEMORY_UNREACHABLE', '2 GiB: no memslot 1');
  });
});
