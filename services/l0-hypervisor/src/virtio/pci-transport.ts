// BAR 4 of the virtio-pci function: the regions its capabilities point at
// (spec 4.1.4). Offsets come from bar-layout.ts, which the caps advertise.
import { L0Error } from '../errors.js';
import type { L0Metrics } from '../metrics.js';
import { BAR_REGION, NOTIFY_OFF_MULTIPLIER } from '../pci/bar-layout.js';
import type { VirtioBlkDevice } from './blk-device.js';
import { readCommonCfg, writeCommonCfg } from './common-cfg.js';

type Region = keyof typeof BAR_REGION;

function regionAt(offset: number): { name: Region; within: number } | undefined {
  for (const [name, r] of Object.entries(BAR_REGION) as [
    Region,
    { offset: number; length: number },
  ][]) {
    if (offset >= r.offset && offset < r.offset + r.length)
      return { name, within: offset - r.offset };
  }
  return undefined;
}

function slice(src: Uint8Array, at: number, len: number): Uint8Array {
  const out = new Uint8Array(len);
  if (at < src.byteLength) out.set(src.subarray(at, Math.min(src.byteLength, at + len)));
  return out;
}

export class VirtioPciTransport {
  constructor(
    private readonly dev: VirtioBlkDevice,
    private readonly metrics: L0Metrics,
    private readonly onNotify: (queue: number) => Promise<void>,
  ) {}

  read(offset: number, len: number): Uint8Array {
    const r = regionAt(offset);
    switch (r?.name) {
      case 'common':
        return slice(readCommonCfg(this.dev), r.within, len);
      case 'isr': {
        // Reading the ISR clears it (spec 4.1.4.5.1).
        const out = slice(Uint8Array.of(this.dev.isr), r.within, len);
        if (r.within === 0) this.dev.isr = 0;
        return out;
      }
      case 'device':
        return slice(this.dev.blkConfig, r.within, len);
      default:
        return new Uint8Array(len); // notify, MSI-X table/PBA (not emulated), gaps
    }
  }

  /** A register write; a notify resolves once the device has drained the queue. */
  async write(offset: number, bytes: Uint8Array): Promise<void> {
    const len = bytes.byteLength;
    if (len !== 1 && len !== 2 && len !== 4 && len !== 8) {
      throw new L0Error(
        'MMIO_BAD_WIDTH',
        `register write of ${len} bytes at BAR offset 0x${offset.toString(16)}`,
      );
    }
    const r = regionAt(offset);
    if (r?.name === 'common') {
      if (!writeCommonCfg(this.dev, r.within, bytes)) this.ignored('common');
      return;
    }
    if (
      r?.name === 'notify' &&
      r.within % NOTIFY_OFF_MULTIPLIER === 0 &&
      (len === 2 || len === 4)
    ) {
      // The address names the queue (queue_notify_off = index); the value is not needed.
      await this.onNotify(r.within / NOTIFY_OFF_MULTIPLIER);
      return;
    }
    this.ignored(r?.name ?? 'gap');
  }

  private ignored(region: string): void {
    this.metrics.mmioIgnored.inc({ region });
  }
}
