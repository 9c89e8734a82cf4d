import { resolve } from 'node:path';
import { parseHex } from '@nestlab/addr';
import type { DeviceSetup, RequestOf, L0Configure } from '@nestlab/protocol';
import { FeatureSet, VIRTIO_BLK_F, VIRTIO_F } from '@nestlab/virtio';
import { DEFAULT_DISK_CACHE, type DiskCacheOptions } from './blk/disk-backend.js';
import { L0Error } from './errors.js';
import { Memslots } from './memory/memslots.js';
import type { RamBacking } from './memory/ram-file.js';

export type L0ConfigureRequest = RequestOf<typeof L0Configure>;

/** The one device of the fixed decisions: virtio-blk at 0000:00:04.0. */
export const DEFAULT_BDF = '0000:00:04.0';

export const DEFAULT_OFFER = FeatureSet.of(
  VIRTIO_F.VERSION_1,
  VIRTIO_F.ACCESS_PLATFORM,
  VIRTIO_F.EVENT_IDX,
  VIRTIO_F.INDIRECT_DESC,
  VIRTIO_BLK_F.FLUSH,
  VIRTIO_BLK_F.SEG_MAX,
  VIRTIO_BLK_F.BLK_SIZE,
);

/**
 * The memslots of a configuration: its explicit memory map, or its ramBytes
 * as a shorthand for the pc layout (exactly one of the two).
 */
export function memslotsOf(req: L0ConfigureRequest): Memslots {
  if ((req.memoryMap === undefined) === (req.ramBytes === undefined)) {
    throw new L0Error('CONFIG_INVALID', 'give either ramBytes or memoryMap, not both or neither');
  }
  if (req.ramBytes !== undefined) return new Memslots(BigInt(req.ramBytes));
  return new Memslots(
    (req.memoryMap?.ram ?? []).map((r, i) => {
      try {
        return { machine: parseHex('machine', r.machine), bytes: BigInt(r.bytes) };
      } catch (cause) {
        throw new L0Error('CONFIG_INVALID', `memoryMap.ram[${i}]: ${String(cause)}`, { cause });
      }
    }),
  );
}

/** GET_ID's answer when the configuration names none: `nestlab-<bus:dev.fn>`. */
export const serialOf = (d: DeviceSetup): string => d.serial ?? `nestlab-${d.bdf.slice(5)}`;

/** What L0 runs before anyone configures it. */
export function defaultConfiguration(): L0ConfigureRequest & { ramBytes: number } {
  return {
    ramBytes: 2 * 2 ** 30,
    devices: [
      {
        bdf: DEFAULT_BDF,
        transport: 'pci',
        offer: DEFAULT_OFFER.toHex(),
        requireAccessPlatform: false,
        iommu: 'none',
        queueSizeMax: 256, // QEMU virtio-blk's default queue-size
        diskBytes: 64 << 20,
        freshDisk: false,
      },
    ],
  };
}

/** NESTLAB_DATA_DIR, default `.nestlab/data` under the working directory. */
export function dataDirFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env['NESTLAB_DATA_DIR'] ?? '.nestlab/data');
}

/** L0's own settings from the environment (beside service-kit's NATS_URL, ADMIN_PORT...). */
export interface L0Settings {
  readonly disk: DiskCacheOptions;
  readonly ramBacking: RamBacking;
}

const MiB = 1 << 20;

/**
 * NESTLAB_L0_WRITE_CACHE_MIB (dirty data kept before write-back, default 16),
 * NESTLAB_L0_RAM_BACKING (file | anon, default file) and the test-only
 * NESTLAB_L0_UNSAFE_FLUSH=1. A bad value is a CONFIG_INVALID error: the
 * process must not start with a setting it misread.
 */
export function l0SettingsFromEnv(env: NodeJS.ProcessEnv = process.env): L0Settings {
  const bad = (name: string, why: string) =>
    new L0Error('CONFIG_INVALID', `${name}=${env[name] ?? ''}: ${why}`);
  const mibText = env['NESTLAB_L0_WRITE_CACHE_MIB'] ?? '';
  const mib = mibText === '' ? DEFAULT_DISK_CACHE.cacheLimitBytes / MiB : Number(mibText);
  if (!Number.isInteger(mib) || mib < 0 || mib > 4096)
    throw bad('NESTLAB_L0_WRITE_CACHE_MIB', 'want a whole number of MiB from 0 to 4096');
  const backing = env['NESTLAB_L0_RAM_BACKING'] || 'file';
  if (backing !== 'file' && backing !== 'anon')
    throw bad('NESTLAB_L0_RAM_BACKING', 'want file or anon');
  const unsafe = env['NESTLAB_L0_UNSAFE_FLUSH'] ?? '';
  if (!['', '0', '1'].includes(unsafe)) throw bad('NESTLAB_L0_UNSAFE_FLUSH', 'want 1 or 0');
  return {
    disk: { cacheLimitBytes: mib * MiB, unsafeFlush: unsafe === '1' },
    ramBacking: backing,
  };
}
