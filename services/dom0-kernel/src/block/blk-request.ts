// A virtio-blk request as the driver lays it out (spec 5.2.6): header
// (16 B, device-readable) + data + status (1 B, device-writable).
import { PAGE_SIZE, addOffset, type PseudoPhysAddr } from '@nestlab/addr';
import {
  BLK_REQ_HEADER_SIZE,
  SECTOR_SIZE,
  VIRTIO_BLK_S,
  VIRTIO_BLK_T,
  encodeBlkHeader,
} from '@nestlab/virtio';
import type { Dom0ErrorCode } from '../errors.js';

/** FLUSH (VIRTIO_BLK_T_FLUSH): header and status only, no data; len 0. */
export type BlkOp = 'read' | 'write' | 'flush';

export interface BlkIo {
  readonly id: string;
  readonly op: BlkOp;
  readonly sector: bigint;
  readonly len: number;
  /** What a write stores. */
  readonly data?: Uint8Array;
  /**
   * A read whose buffer is filled with READ_POISON before the device sees it.
   * A verifying job asks for it: a reused buffer page may still hold the very
   * block the read expects (from an earlier I/O), and without the poison a
   * read the device never delivered would pass as correct.
   */
  readonly poison?: boolean;
}

/**
 * What a poisoned read buffer holds until the device writes it: not zeros,
 * and its first word is not a block stamp's magic, so no block can equal it.
 */
export const READ_POISON = 0xa5;

export function blkHeader(io: BlkIo): Uint8Array {
  return encodeBlkHeader({
    type:
      io.op === 'read'
        ? VIRTIO_BLK_T.IN
        : io.op === 'write'
          ? VIRTIO_BLK_T.OUT
          : VIRTIO_BLK_T.FLUSH,
    reserved: 0,
    sector: io.op === 'flush' ? 0n : io.sector,
  });
}

/** Page 0 holds header and status; data starts on page 1 (page-aligned, like a bio page). */
export const STATUS_OFFSET = BLK_REQ_HEADER_SIZE;
export const requestPages = (len: number): number => 1 + Math.ceil(len / PAGE_SIZE);
export const dataAddr = (base: PseudoPhysAddr): PseudoPhysAddr => addOffset(base, PAGE_SIZE);

export function checkIo(io: BlkIo): void {
  if (io.op === 'flush') {
    if (io.len !== 0) throw new RangeError('a FLUSH carries no data (len 0)');
    return;
  }
  if (io.len <= 0 || io.len % SECTOR_SIZE !== 0)
    throw new RangeError(`I/O length ${io.len} is not a multiple of 512`);
  if (io.op === 'write' && io.data?.byteLength !== io.len)
    throw new RangeError('write data length mismatch');
}

/** The status byte as an error code, or null for OK. */
export function statusError(status: number): Dom0ErrorCode | null {
  switch (status) {
    case VIRTIO_BLK_S.OK:
      return null;
    case VIRTIO_BLK_S.IOERR:
      return 'BLK_IOERR';
    case VIRTIO_BLK_S.UNSUPP:
      return 'BLK_UNSUPP';
    default:
      return 'BLK_BAD_STATUS';
  }
}
