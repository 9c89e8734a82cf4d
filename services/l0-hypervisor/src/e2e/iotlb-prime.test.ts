import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Subscription } from '@nats-io/nats-core';
import {
  DeviceDma,
  IommuTranslate,
  IotlbInvalidate,
  IotlbPrime,
  L0Configure,
  decodeRequest,
  encodeReply,
  subjectOf,
} from '@nestlab/protocol';
import { DEFAULT_BDF, defaultConfiguration } from '../config.js';
import { TestDriver } from '../testing/driver.js';
import { metricValue, startL0, type L0Harness } from '../testing/harness.js';

const IOVA = 0x1_0004_0000n;
const hex = (v: bigint) => `0x${v.toString(16)}`;

describe('IOTLB primed by the IOMMU on map (IotlbPrime)', () => {
  let h: L0Harness;
  let sub: Subscription | undefined;
  let translations = 0;

  /** An IOMMU that maps every IOVA to machine 0x9000 + offset, counting requests. */
  const serveIommu = () => {
    sub = h.clientNc.subscribe(subjectOf(IommuTranslate, h.stack), {
      callback: (_e, msg) => {
        translations++;
        const iova = BigInt(decodeRequest(IommuTranslate, msg.data).head.iova);
        msg.respond(
          encodeReply(IommuTranslate, {
            machine: hex(0x9000n + (iova & 0xfffn)),
            read: true,
            write: true,
            by: 'iommu',
          }),
        );
      },
    });
    return h.clientNc.flush();
  };
  const access = (bus: bigint, len: number) =>
    h.request(DeviceDma, { bdf: DEFAULT_BDF, bus: hex(bus), len, write: false });
  const prime = async (iova: bigint, mfns: number[], write = true) => {
    h.client.publish(IotlbPrime, {
      bdf: DEFAULT_BDF,
      ranges: [{ iova: hex(iova), mfns, read: true, write }],
    });
    await h.clientNc.flush();
  };

  before(async () => {
    h = await startL0({ iommuTimeoutMs: 500 });
    const cfg = defaultConfiguration();
    const dev = cfg.devices[0]!;
    await h.request(L0Configure, {
      ...cfg,
      devices: [{ ...dev, iommu: 'physical', freshDisk: true }],
    });
    await serveIommu();
  });
  after(async () => {
    sub?.unsubscribe();
    await h?.stop();
  });

  it('a primed page translates without asking the IOMMU, to the primed frame', async () => {
    const d = new TestDriver(h);
    await d.access([{ op: 'write', addr: 0x21010n, bytes: Uint8Array.of(4, 2) }]);
    translations = 0;
    const hits = metricValue(h.metrics, 'nestlab_l0_iotlb_hits_total');
    await prime(IOVA, [0x20, 0x21]);
    const r = await access(IOVA + 0x1010n, 2);
    assert.equal(r.head.record.verdict, 'translated');
    assert.equal(r.head.record.machine, '0x21010');
    assert.deepEqual(Uint8Array.from(r.data), Uint8Array.of(4, 2));
    assert.equal((await access(IOVA, 1)).head.record.machine, '0x20000');
    assert.equal(translations, 0, 'both pages were primed');
    assert.equal(metricValue(h.metrics, 'nestlab_l0_iotlb_hits_total'), hits + 2);
  });

  it('a prime never replaces a cached entry; after an invalidation it fills again', async () => {
    const page = IOVA + 0x10000n;
    translations = 0;
    assert.equal((await access(page, 1)).head.record.machine, '0x9000');
    assert.equal(translations, 1, 'a miss: the IOMMU answered');
    await prime(page, [0x30]);
    assert.equal((await access(page, 1)).head.record.machine, '0x9000', 'the cached entry stays');
    h.client.publish(IotlbInvalidate, {
      bdf: DEFAULT_BDF,
      ranges: [{ iova: hex(page), pages: 1 }],
    });
    await prime(page, [0x30]);
    assert.equal((await access(page, 1)).head.record.machine, '0x30000');
    assert.equal(translations, 1, 'the invalidated page was primed again, not asked');
  });

  it('a primed read-only page is a miss for a write: the IOMMU decides', async () => {
    const page = IOVA + 0x20000n;
    await prime(page, [0x31], false);
    translations = 0;
    const w = await h.request(
      DeviceDma,
      { bdf: DEFAULT_BDF, bus: hex(page), len: 1, write: true },
      { data: Uint8Array.of(1) },
    );
    assert.equal(w.head.record.machine, '0x9000');
    assert.equal(translations, 1);
  });

  it('refuses a malformed prime and keeps serving', async () => {
    h.clientNc.publish(subjectOf(IotlbPrime, h.stack), new TextEncoder().encode('nope'));
    await prime(IOVA + 0x30000n, [0x32]);
    translations = 0;
    assert.equal((await access(IOVA + 0x30000n, 1)).head.record.machine, '0x32000');
    assert.equal(translations, 0);
  });
});
