// A malicious driver against the real stack: L0 (in-process), Xen and the
// IOMMU (their own processes) on one nats-server. The driver owns a few dom0
// frames mapped into the device's IOMMU domain through Xen, and posts virtio-
// blk requests whose buffers point at Xen's frames, at frames dom0 does not
// own (Xen models no domU: free frames stand in for another domain's), at
// unmapped IOVAs, at the ring itself and at the device's own MMIO BAR.
// With ACCESS_PLATFORM and the IOMMU translating, no access lands outside the
// device's domain and every refused one is in the IOMMU's fault log. Without
// it, the same driver reaches Xen's memory and the lab's oracle reports the
// accesses as outside any mapping, on Xen's frames: the isolation hole.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { PAGE_SIZE, toHex } from '@nestlab/addr';
import {
  DmaLog,
  FrameOwners,
  IommuConfigure,
  IommuFaults,
  IommuMapHypercall,
  L0Configure,
  P2mGet,
  XenConfigure,
  type DmaRecord,
  type LedgerEntry,
} from '@nestlab/protocol';
import { FeatureSet, VIRTIO_BLK_T, VIRTIO_F } from '@nestlab/virtio';
import { RingImage } from '@nestlab/virtio/testing';
import type { TestMemory } from '@nestlab/virtio/testing';
import {
  spawnService,
  startNatsServer,
  stopSpawned,
  waitFor,
  type NatsServerHandle,
} from '@nestlab/testing';
import { DEFAULT_BDF, defaultConfiguration } from '../config.js';
import { blkBuffers, pattern } from '../testing/blk-helpers.js';
import { TestDriver, type RemoteMemory } from '../testing/driver.js';
import { startL0, type L0Harness } from '../testing/harness.js';

const STACK = 'evil';
const IOVA = 0x40_0000_0000n;
const PAGES = 4; // ring, header+status, data, spare
/** The lab's oracle, loaded from its build at run time (lab depends on this package, not the reverse). */
interface Oracle {
  judge(
    records: readonly DmaRecord[],
    ledger: readonly LedgerEntry[],
    owners: (mfns: number[]) => Promise<string[]>,
  ): Promise<{
    counts: Record<'faulted' | 'outside' | 'misdirected' | 'bypassed' | 'translated', number>;
    firstOutside: { owner: string | null; record: DmaRecord } | null;
  }>;
}
/** Pages through a log (`next` of a non-empty page, null when empty) and returns where it ends. */
async function endOf(page: (since: number) => Promise<number | null>): Promise<number> {
  for (let at = 0; ;) {
    const next = await page(at);
    if (next === null) return at;
    at = next;
  }
}
const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

/** The driver's view: IOVAs (or, without ACCESS_PLATFORM, machine addresses) onto its own frames. */
class DriverMemory implements TestMemory {
  constructor(
    private readonly mem: RemoteMemory,
    private readonly toMachine: (bus: bigint) => bigint,
  ) {}
  write(addr: bigint, bytes: Uint8Array): void {
    this.mem.write(this.toMachine(addr), bytes);
  }
  readSync(addr: bigint, len: number): Uint8Array {
    return this.mem.readSync(this.toMachine(addr), len);
  }
}

describe('a malicious driver: descriptors aimed outside its own memory', () => {
  let nats: NatsServerHandle;
  let h: L0Harness;
  let oracle: Oracle;
  let mfns: number[] = [];
  let pfns: number[] = [];
  let xenFrame = 0;
  let freeFrame = 0;
  let bar = 0n;

  const owners = async (list: number[]) =>
    (await h.request(FrameOwners, { mfns: list })).head.owners;
  const readMachine = (d: TestDriver, mfn: number) => d.read(BigInt(mfn) * BigInt(PAGE_SIZE), 64);

  before(async () => {
    oracle = (await import(here('../../../lab/dist/oracle/oracle.js'))) as Oracle;
    nats = await startNatsServer();
    h = await startL0({ nats, stack: STACK, iommuTimeoutMs: 2000 });
    // Registered before their readiness wait: `after` stops them even if this hook times out.
    for (const name of ['iommu', 'xen'])
      await spawnService(here(`../../../${name}/dist/server.js`), nats.url, STACK);
    await h.request(IommuConfigure, { mode: 'translate' });
    const cfg = defaultConfiguration();
    const dev = { ...cfg.devices[0]!, iommu: 'virtio' as const, freshDisk: true };
    const l0 = await h.request(L0Configure, { ...cfg, devices: [dev] });
    bar = BigInt(l0.head.devices[0]?.bars[0]?.addr ?? '0x0');
    await h.request(XenConfigure, {
      present: true,
      machineBytes: cfg.ramBytes,
      dom0Bytes: 2 ** 30,
      seed: 7,
      passthrough: [DEFAULT_BDF],
    });
    const p2m = (await h.request(P2mGet, { domain: 0 })).head.ranges;
    const run = p2m.find((r) => r.count >= PAGES);
    assert.ok(run, 'dom0 has a run of frames');
    pfns = Array.from({ length: PAGES }, (_, i) => run.pfn + i);
    mfns = (
      await h.request(IommuMapHypercall, {
        domain: 0,
        bdf: DEFAULT_BDF,
        ranges: [{ iova: toHex(IOVA), pfns, write: true }],
      })
    ).head.ranges[0]!.mfns;
    const low = Array.from({ length: 0x8000 }, (_, i) => 0x100 + i);
    const lowOwners = await owners(low);
    xenFrame = low[lowOwners.indexOf('xen')] ?? -1;
    freeFrame = low[lowOwners.indexOf('free')] ?? -1;
    assert.ok(xenFrame > 0 && freeFrame > 0, 'Xen and free frames in low memory');
  });
  after(async () => {
    await h?.stop();
    await stopSpawned();
    await nats?.stop();
  });

  /** Runs one blk request whose data buffer (or header) is at `target`; returns what the device did. */
  async function attack(
    accessPlatform: boolean,
    target: bigint,
    op: 'in' | 'out',
    where: 'data' | 'header',
  ) {
    const busOf = (page: number) =>
      (accessPlatform ? IOVA : BigInt(mfns[0]!) * 4096n) + BigInt(page * PAGE_SIZE);
    const toMachine = (b: bigint) => {
      const base = accessPlatform ? IOVA : BigInt(mfns[0]!) * 4096n;
      const page = Number((b - base) / 4096n);
      return BigInt(mfns[page] ?? 0) * 4096n + (b & 0xfffn);
    };
    const d = new TestDriver(h);
    const feats = accessPlatform
      ? [VIRTIO_F.VERSION_1, VIRTIO_F.ACCESS_PLATFORM]
      : [VIRTIO_F.VERSION_1];
    await d.negotiate(FeatureSet.of(...feats));
    const mem = new DriverMemory(d.mem, toMachine);
    const ring = new RingImage(mem, {
      size: 8,
      desc: busOf(0),
      avail: busOf(0) + 0x800n,
      used: busOf(0) + 0xc00n,
    });
    await d.start(ring);
    const since = await endOf(async (at) => {
      const r = (await h.request(DmaLog, { since: at, limit: 2000 })).head;
      return r.records.length ? r.next : null;
    });
    const faultsSince = await endOf(async (at) => {
      const r = (await h.request(IommuFaults, { since: at })).head;
      return r.faults.length ? r.next : null;
    });
    const header = where === 'header' ? target : busOf(1);
    const data = where === 'data' ? target : busOf(2);
    const spec = {
      type: op === 'in' ? VIRTIO_BLK_T.IN : VIRTIO_BLK_T.OUT,
      header,
      status: busOf(1) + 0x100n,
      data: [{ addr: data, len: 512, writable: op === 'in' }],
    };
    // The driver writes its header and status byte in its own pages, never at the target.
    const own = { write: (a: bigint, b: Uint8Array) => a !== target && mem.write(a, b) };
    ring.addChain(blkBuffers(own as unknown as RemoteMemory, spec));
    await d.kick();
    await waitFor('the device handled the chain', async () => {
      const st = await d.state();
      return st.brokenReason !== null || st.queues[0]?.used === 1 ? st : undefined;
    });
    const records = (await h.request(DmaLog, { since, limit: 2000 })).head.records.filter(
      (r) => r.bdf === DEFAULT_BDF,
    );
    const faults = (await h.request(IommuFaults, { since: faultsSince })).head.faults;
    const ledger: LedgerEntry[] = [0, 1, 2].map((page) => ({
      what: page === 0 ? 'ring' : 'buffer',
      bus: toHex(busOf(page)),
      len: PAGE_SIZE,
      pseudo: toHex(BigInt(pfns[page]!) * 4096n),
      mfns: [mfns[page]!],
    }));
    const verdict = await oracle.judge(records, ledger, owners);
    return { d, records, faults, verdict, state: await d.state() };
  }

  const targets = () =>
    [
      ["Xen's frame", BigInt(xenFrame) * 4096n, 'in', 'data'],
      ['a frame dom0 does not own', BigInt(freeFrame) * 4096n, 'in', 'data'],
      ['an unmapped IOVA', 0x7_dead_0000n, 'in', 'data'],
      ["the device's MMIO BAR", bar, 'in', 'data'],
      [
        "Xen's frame as the header (reading Xen's memory)",
        BigInt(xenFrame) * 4096n,
        'out',
        'header',
      ],
    ] as const;

  it('with ACCESS_PLATFORM: every hostile access faults in the IOMMU, is logged, and touches nothing', async () => {
    for (const [what, target, op, where] of targets()) {
      const d = new TestDriver(h);
      await d.discover();
      const before = [await readMachine(d, xenFrame), await readMachine(d, freeFrame)];
      const r = await attack(true, target, op, where);
      const mapped = new Set(mfns);
      for (const rec of r.records) {
        assert.ok(
          rec.verdict === 'translated' || rec.verdict === 'faulted',
          `${what}: ${rec.verdict}`,
        );
        if (rec.verdict === 'translated') {
          assert.ok(
            mapped.has(Number(BigInt(rec.machine ?? '0') >> 12n)),
            `${what}: hit ${rec.machine}`,
          );
        }
      }
      const hostile = r.records.filter((x) => BigInt(x.bus) >> 12n === target >> 12n);
      assert.ok(hostile.length > 0 && hostile.every((x) => x.verdict === 'faulted'), what);
      assert.ok(
        r.faults.some((f) => BigInt(f.iova) >> 12n === target >> 12n),
        `${what}: in the IOMMU fault log`,
      );
      assert.deepEqual(r.verdict.counts.outside, 0, what);
      assert.deepEqual(r.verdict.counts.misdirected, 0, what);
      assert.ok(r.verdict.counts.faulted > 0, what);
      assert.deepEqual(
        [await readMachine(d, xenFrame), await readMachine(d, freeFrame)],
        before,
        what,
      );
    }
  });

  it('with ACCESS_PLATFORM: a buffer on the ring itself stays inside the domain (the driver hurts only itself)', async () => {
    const r = await attack(true, IOVA, 'in', 'data'); // the descriptor table
    assert.ok(r.records.some((x) => x.what === 'buffer' && x.bus === toHex(IOVA) && x.write));
    for (const rec of r.records) {
      assert.equal(rec.verdict, 'translated');
      assert.ok(mfns.includes(Number(BigInt(rec.machine ?? '0') >> 12n)));
    }
    assert.equal(r.verdict.counts.outside, 0);
    assert.equal(r.verdict.counts.misdirected, 0);
  });

  it("without ACCESS_PLATFORM the device bypasses the IOMMU: it writes Xen's frame and the oracle names the hole", async () => {
    const d = new TestDriver(h);
    await d.discover();
    const xenAddr = BigInt(xenFrame) * 4096n;
    await d.access([{ op: 'write', addr: xenAddr, bytes: pattern(512, 3) }]);
    const r = await attack(false, xenAddr, 'in', 'data');
    const hit = r.records.find((x) => BigInt(x.bus) === xenAddr);
    assert.ok(hit, 'the device accessed the address the driver gave');
    assert.equal(hit.verdict, 'bypass');
    assert.equal(hit.machine, toHex(xenAddr));
    assert.notDeepEqual(
      [...(await d.read(xenAddr, 512))],
      [...pattern(512, 3)],
      "Xen's frame was overwritten",
    );
    assert.ok(r.verdict.counts.bypassed > 0);
    assert.ok(r.verdict.counts.outside > 0, 'an access outside every mapping');
    assert.equal(r.verdict.firstOutside?.owner, 'xen');
  });
});
