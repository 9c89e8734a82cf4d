import { IommuTranslate, Msi } from '@nestlab/protocol';
import { parseHex, toHex } from '@nestlab/addr';
import type { ServiceModule } from '@nestlab/service-kit';
import { dataDirFromEnv, defaultConfiguration } from './config.js';
import { registerDeviceHandlers } from './handlers/device-handlers.js';
import { registerMemoryHandlers } from './handlers/memory-handlers.js';
import { Machine } from './machine.js';
import { createL0Metrics } from './metrics.js';

export interface L0Options {
  /** Where disk images live; default NESTLAB_DATA_DIR or `.nestlab/data`. */
  dataDir?: string;
  /** IommuTranslate timeout for the DMA engine (a miss must not stall a queue for long). */
  iommuTimeoutMs?: number;
}

/** The L0 hypervisor (QEMU/KVM-like): guest RAM, memslots, the PCI bus and the emulated virtio-blk device. */
export function createL0Hypervisor(options: L0Options = {}): ServiceModule {
  let machine: Machine | undefined;
  return {
    name: 'l0-hypervisor',
    token: 'l0',
    defaultAdminPort: 7701,
    async start(ctx) {
      const metrics = createL0Metrics(ctx.metrics);
      const m = new Machine({
        stack: ctx.config.stack,
        dataDir: options.dataDir ?? dataDirFromEnv(),
        tracer: ctx.tracer,
        metrics,
        translate: async (bdf, iova, write) => {
          const { head } = await ctx.bus.request(
            IommuTranslate,
            { bdf, iova: toHex(iova), write },
            { timeoutMs: options.iommuTimeoutMs ?? 1000 },
          );
          return { ...head, machine: parseHex('machine', head.machine) };
        },
        raiseMsi: (bdf, vector) => ctx.bus.publish(Msi, { bdf, vector }),
      });
      machine = m;
      registerMemoryHandlers(ctx, m, metrics);
      registerDeviceHandlers(ctx, m, metrics);
      ctx.metrics
        .gauge('nestlab_l0_ram_touched_pages', 'Guest RAM pages backed so far')
        .set(() => m.mem.ram.touchedPages);
      try {
        await m.configure(defaultConfiguration());
      } catch (err) {
        // Still serve: a later L0Configure may name a usable data dir or disk.
        ctx.log.error({ err }, 'default configuration failed; no devices until L0Configure');
      }
      ctx.log.debug('handlers registered');
    },
    state: () =>
      machine && {
        memory: machine.mem.stats(),
        cpuFrames: machine.frames.summary(),
        devices: machine.pci.all().map((fn) => fn.dev.inspect()),
        dma: {
          logged: machine.dmaLog.size,
          oldestSeq: machine.dmaLog.oldest,
          iotlbEntries: machine.iotlb.size,
        },
      },
    async stop() {
      await machine?.close();
    },
  };
}
