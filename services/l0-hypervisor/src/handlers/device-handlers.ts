import { parseHex } from '@nestlab/addr';
import {
  DeviceDma,
  DeviceNotify,
  DeviceState,
  DmaLog,
  IotlbInvalidate,
  L0Configure,
  PciConfig,
} from '@nestlab/protocol';
import type { ServiceContext } from '@nestlab/service-kit';
import { L0Error } from '../errors.js';
import type { L0Service } from '../l0-service.js';
import type { L0Metrics } from '../metrics.js';
import type { PciFunction } from '../pci/bus.js';

function device(m: L0Service, bdf: string): PciFunction {
  const fn = m.pci.get(bdf);
  if (!fn) throw new L0Error('NO_SUCH_DEVICE', `no device at ${bdf}`);
  return fn;
}

export function registerDeviceHandlers(
  ctx: ServiceContext,
  m: L0Service,
  metrics: L0Metrics,
): void {
  ctx.bus.handle(L0Configure, async ({ head }) => ({ body: await m.configure(head) }));

  ctx.bus.handle(PciConfig, ({ head }) => {
    if (head.op === 'write') {
      if (head.value === undefined)
        throw new L0Error('CONFIG_INVALID', 'a config write needs a value');
      m.pci.configWrite(head.bdf, head.offset, head.size, head.value);
    }
    // A write answers with what reads back, so a BAR sizing probe is one round trip less.
    return { body: { value: m.pci.configRead(head.bdf, head.offset, head.size) } };
  });

  // The doorbell as its own event; subject nestlab.<stack>.l0.dev.<token>.notify.
  ctx.bus.handle(DeviceNotify, async ({ head, subject }) => {
    const token = subject.split('.')[4] ?? '';
    const fn = m.pci.byToken(token);
    if (!fn) {
      metrics.notifiesDropped.inc({ reason: 'no-device' });
      return;
    }
    await fn.transport.doorbell(head.queue);
  });

  ctx.bus.handle(DeviceState, ({ head }) => ({ body: device(m, head.bdf).dev.state() }));

  ctx.bus.handle(DmaLog, ({ head }) => ({ body: m.dmaLog.page(head.since, head.limit) }));

  // A rogue or buggy device: DMA an arbitrary bus address through the same engine.
  ctx.bus.handle(DeviceDma, async ({ head, data }) => {
    const { dev } = device(m, head.bdf);
    const want = head.write ? head.len : 0;
    if (data.byteLength !== want) {
      throw new L0Error(
        'DATA_LENGTH_MISMATCH',
        `a ${head.write ? 'write' : 'read'} of ${head.len} bytes carries ${data.byteLength}`,
      );
    }
    let bus;
    try {
      bus = parseHex('bus', head.bus);
    } catch (cause) {
      throw new L0Error('CONFIG_INVALID', String(cause), { kind: 'input' });
    }
    const r = head.write
      ? await m.dma.write(dev, bus, data, 'rogue')
      : await m.dma.read(dev, bus, head.len, 'rogue');
    // One record per reply: the first refused span if any, else the first span.
    const record = r.records.find((x) => x.verdict === 'faulted' || x.fault) ?? r.records[0];
    if (!record) throw new L0Error('INTERNAL', 'DMA produced no record');
    return { body: { record }, ...(r.ok && !head.write ? { data: r.data } : {}) };
  });

  // Synchronous on purpose: the IOMMU publishes an invalidation and flushes its
  // connection before it answers the unmap, so the event is queued to L0 ahead
  // of any message the unmapping domain sends after that answer; handled on
  // arrival, it takes effect before them (in-flight translations are guarded by
  // the IOTLB's generation).
  ctx.bus.handle(IotlbInvalidate, ({ head }) => {
    for (const r of head.ranges) m.iotlb.invalidate(head.bdf, parseHex('bus', r.iova), r.pages);
  });
}
