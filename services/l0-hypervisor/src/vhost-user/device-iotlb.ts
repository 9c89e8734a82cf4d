// The device IOTLB of a vhost-user back-end behind QEMU's vIOMMU
// (vhost-user.rst "IOMMU support"): with ACCESS_PLATFORM negotiated, ring and
// buffer addresses are IOVAs. The front-end pushes translations
// (VHOST_USER_IOTLB_MSG UPDATE / INVALIDATE, IOVA → its user address); on a
// miss the back-end asks over the back-end channel (VHOST_USER_BACKEND_IOTLB_MSG
// MISS) and waits for the UPDATE. This is the IOMMU behind the DMA engine's
// translateFn: its answers are machine (guest-physical) addresses.
import type { Socket } from 'node:net';
import { busAddr, machineAddr, toHex } from '@nestlab/addr';
import type { BusAddr } from '@nestlab/addr';
import type { IommuAnswer } from '../dma/dma-engine.js';
import { VhostUserError } from './errors.js';
import type { VhostMemoryTable } from './memory-table.js';
import {
  BACKEND_REQ,
  FLAG,
  IOTLB_PERM,
  IOTLB_TYPE,
  encodeIotlbMsg,
  encodeReply,
  type IotlbMsg,
} from './protocol.js';

/** How long a miss waits for the front-end's UPDATE before the access faults. */
export const IOTLB_MISS_TIMEOUT_MS = 5000;

type Entry = Pick<IotlbMsg, 'iova' | 'size' | 'uaddr' | 'perm'>;

export class DeviceIotlb {
  private entries: Entry[] = [];
  private waiters: { iova: bigint; wake: () => void }[] = [];
  channel: Socket | null = null;
  readonly counts = { updates: 0, invalidates: 0, misses: 0 };

  constructor(private readonly table: () => VhostMemoryTable) {}

  /** The newest translation wins: entries it overlaps are gone (the IOVA was remapped). */
  update(m: Entry): void {
    this.counts.updates++;
    this.drop(m.iova, m.size);
    this.entries.push(m);
    for (const w of this.waiters.filter((x) => this.find(x.iova))) w.wake();
  }

  /** Drops the entries that overlap [iova, iova+size). */
  invalidate(iova: bigint, size: bigint): void {
    this.counts.invalidates++;
    this.drop(iova, size);
  }

  private drop(iova: bigint, size: bigint): void {
    const end = iova + size;
    this.entries = this.entries.filter((e) => e.iova + e.size <= iova || e.iova >= end);
  }

  private find(iova: bigint): Entry | undefined {
    return this.entries.find((e) => iova >= e.iova && iova < e.iova + e.size);
  }

  /** The DMA engine's IommuTranslateFn. Throws a coded error when the IOVA stays unmapped. */
  async translate(iova: BusAddr, write: boolean): Promise<IommuAnswer> {
    let e = this.find(iova);
    // A hit without the permission is a miss too: the IOMMU may have remapped the page.
    if (!e || (e.perm & (write ? IOTLB_PERM.WO : IOTLB_PERM.RO)) === 0) {
      this.miss(iova, write);
      e = await this.waitFor(iova);
    }
    const guest = this.table().userToGuest(e.uaddr + (iova - e.iova));
    if (guest === null)
      throw new VhostUserError('UNMAPPED_ADDRESS', `IOVA ${toHex(iova)} maps to no memory region`);
    return {
      machine: machineAddr(guest),
      read: (e.perm & IOTLB_PERM.RO) !== 0,
      write: (e.perm & IOTLB_PERM.WO) !== 0,
      by: 'iommu',
    };
  }

  private miss(iova: bigint, write: boolean): void {
    this.counts.misses++;
    if (!this.channel)
      throw new VhostUserError(
        'IOTLB_MISS_UNANSWERED',
        `IOTLB miss at ${toHex(iova)} with no back-end channel`,
      );
    const msg = encodeIotlbMsg({
      iova,
      size: 0n,
      uaddr: 0n,
      perm: write ? IOTLB_PERM.WO : IOTLB_PERM.RO,
      type: IOTLB_TYPE.MISS,
    });
    this.channel.write(encodeReply(BACKEND_REQ.IOTLB_MSG, msg, FLAG.VERSION));
  }

  private waitFor(iova: bigint): Promise<Entry> {
    return new Promise((resolve, reject) => {
      const w = {
        iova,
        wake: () => {
          clearTimeout(t);
          this.waiters.splice(this.waiters.indexOf(w), 1);
          resolve(this.find(iova)!);
        },
      };
      const t = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(
          new VhostUserError(
            'IOTLB_MISS_UNANSWERED',
            `no IOTLB update for ${toHex(iova)} in ${IOTLB_MISS_TIMEOUT_MS} ms`,
          ),
        );
      }, IOTLB_MISS_TIMEOUT_MS);
      this.waiters.push(w);
    });
  }

  /** A bus address as the ring keeps it: with the vIOMMU, QEMU's ring addresses are IOVAs already. */
  static ringIova(addr: bigint): BusAddr {
    return busAddr(addr);
  }

  close(): void {
    this.channel?.destroy();
    this.channel = null;
    this.entries = [];
  }
}
