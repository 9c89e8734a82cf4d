import { encodeBlkHeader } from '@nestlab/virtio';
import type { BufferSpec } from '@nestlab/virtio/testing';
import type { RemoteMemory } from './driver.js';

export interface BlkReqSpec {
  type: number;
  sector?: bigint;
  /** Where the 16-byte header goes. */
  header: bigint;
  /** Data buffers (device-writable for IN/GET_ID). */
  data?: BufferSpec[];
  status: bigint;
}

/** Writes the header into memory and returns the chain's buffers: header, data, status. */
export function blkBuffers(mem: RemoteMemory, r: BlkReqSpec): BufferSpec[] {
  mem.write(r.header, encodeBlkHeader({ type: r.type, reserved: 0, sector: r.sector ?? 0n }));
  mem.write(r.status, Uint8Array.of(0xee)); // not a status value: proves the device wrote it
  return [
    { addr: r.header, len: 16 },
    ...(r.data ?? []),
    { addr: r.status, len: 1, writable: true },
  ];
}

export const pattern = (len: number, seed = 1): Uint8Array =>
  Uint8Array.from({ length: len }, (_, i) => (i * 31 + seed * 7) & 0xff);
