import { IommuTranslate } from '@nestlab/protocol';
import { parseHex, toHex } from '@nestlab/addr';
import type { ServiceContext, ServiceModule } from '@nestlab/service-kit';
import {
  dataDirFromEnv,
  defaultConfiguration,
  l0SettingsFromEnv,
  type L0Settings,
} from './config.js';
import { registerIotlbPrime } from './dma/iotlb-prime.js';
import { registerL0Faults } from './faults/l0-faults.js';
import { registerDeviceHandlers } from './handlers/device-handlers.js';
import { registerMemoryHandlers } from './handlers/memory-handlers.js';
import { L0Service } from './l0-service.js';
import { createL0Metrics } from './metrics.js';
import { StateFile, stateFilePath } from './persist/state-file.js';

export interface L0Options {
  /** Where disk images, guest RAM and the respawn state live; default NESTLAB_DATA_DIR or `.nestlab/data`. */
  dataDir?: string;
  /** IommuTranslate timeout for the DMA engine (a miss must not stall a queue for long). */
  iommuTimeoutMs?: number;
  /** Write cache, RAM backing, unsafe FLUSH; default from the environment (l0SettingsFromEnv). */
  settings?: L0Settings;
}

/** The L0 hypervisor (QEMU/KVM-like): guest RAM, memslots, the PCI bus and the emulated virtio-blk device. */
export function createL0Hypervisor(options: L0Options = {}): ServiceModule {
  // Read now, so a bad variable stops the process before it connects anywhere.
  const settings = options.settings ?? l0SettingsFromEnv();
  let machine: L0Service | undefined;
  return {
    name: 'l0-hypervisor',
    token: 'l0',
    defaultAdminPort: 7701,
    async start(ctx) {
      if (settings.disk.unsafeFlush) {
        ctx.log.warn(
          '!!! NESTLAB_L0_UNSAFE_FLUSH=1: FLUSH completes WITHOUT writing the cache back; ' +
            'acknowledged data WILL be lost on a crash. Test use only. !!!',
        );
      }
      const dataDir = options.dataDir ?? dataDirFromEnv();
      const metrics = createL0Metrics(ctx.metrics);
      const state = new StateFile(stateFilePath(dataDir, ctx.config.stack));
      const m = new L0Service({
        stack: ctx.config.stack,
        dataDir,
        tracer: ctx.tracer,
        metrics,
        disk: settings.disk,
        ramBacking: settings.ramBacking,
        state,
        translate: async (bdf, iova, write) => {
          const { head } = await ctx.bus.request(
            IommuTranslate,
            { bdf, iova: toHex(iova), write },
            { timeoutMs: options.iommuTimeoutMs ?? 1000 },
          );
          const following = (head.following ?? []).map((f) => ({
            ...f,
            machinePage: parseHex('machine', f.machinePage),
          }));
          return { ...head, machine: parseHex('machine', head.machine), following };
        },
        bus: ctx.bus,
        faultFired: (kind, detail) => {
          ctx.log.warn({ kind, detail }, 'domain fault fired');
          ctx.faults.fired(kind, detail);
        },
      });
      machine = m;
      // Guest RAM stores reach their file before any message that may depend on them.
      ctx.bus.beforeSend(() => m.mem.ram.flush());
      // Restore before subscribing: a store that raced the restore would be lost with it.
      await bringUp(ctx, m, state);
      registerMemoryHandlers(ctx, m, metrics);
      registerDeviceHandlers(ctx, m, metrics);
      registerIotlbPrime(ctx.bus, m.iotlb);
      registerL0Faults(ctx.faults, m);
      ctx.metrics
        .gauge('nestlab_l0_ram_touched_pages', 'Guest RAM pages backed so far')
        .set(() => m.mem.ram.touchedPages);
      ctx.metrics
        .gauge('nestlab_l0_write_cache_dirty_bytes', 'Written data not yet in the disk images')
        .set(() => m.blkModels().reduce((n, blk) => n + blk.disk.dirtyBytes, 0));
      ctx.log.debug('handlers registered');
    },
    state: () =>
      machine && {
        memory: machine.mem.stats(),
        cpuFrames: machine.frames.summary(),
        devices: machine.pci
          .all()
          .map((fn) => ({ ...fn.dev.inspect(), ...fn.transport.inspect() })),
        dma: {
          logged: machine.dmaLog.size,
          oldestSeq: machine.dmaLog.oldest,
          iotlbEntries: machine.iotlb.size,
        },
        writeCache: settings.disk,
        ramBacking: settings.ramBacking,
        faults: { loseMsi: machine.lostMsi.pending, loseDoorbell: machine.lostDoorbell.pending },
      },
    async stop() {
      await machine?.close();
    },
  };
}

/**
 * A respawn after a crash comes back in the crashed run's configuration
 * (the lab does not configure again); a first start runs the default one.
 */
async function bringUp(ctx: ServiceContext, m: L0Service, state: StateFile): Promise<void> {
  try {
    const saved = await state.load();
    if (saved) {
      await m.restore(saved);
      ctx.log.warn(
        {
          devices: saved.config.devices.map((d) => d.bdf),
          memory: saved.config.memoryMap ?? saved.config.ramBytes,
        },
        'respawned: last configuration restored, disks and guest RAM kept, devices in reset',
      );
      return;
    }
  } catch (err) {
    ctx.log.error({ err }, 'cannot restore the saved state; starting from the default');
  }
  try {
    await m.configure(defaultConfiguration());
  } catch (err) {
    // Still serve: a later L0Configure may name a usable data dir or disk.
    ctx.log.error({ err }, 'default configuration failed; no devices until L0Configure');
  }
}
