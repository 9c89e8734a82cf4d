// virtio-blk request and config layouts (spec 5.2, Linux uapi virtio_blk.h).
import { addOffset } from '@nestlab/addr';
import type { BusAddr } from '@nestlab/addr';
import { VIRTIO_BLK_T } from './constants.js';
import { VirtioError, fail, ok } from './errors.js';
import type { VirtioResult } from './errors.js';
import { readU32, readU64, writeU32, writeU64 } from './le-bytes.js';
import type { RegField } from './pci.js';

/** struct virtio_blk_outhdr: type u32, reserved u32 (Linux: ioprio), sector u64. */
export const BLK_REQ_HEADER = {
  type: { offset: 0, width: 4 },
  reserved: { offset: 4, width: 4 },
  sector: { offset: 8, width: 8 },
} as const satisfies Record<string, RegField>;
export const BLK_REQ_HEADER_SIZE = 16;
/** The status byte the device writes last. */
export const BLK_STATUS_SIZE = 1;

export interface BlkReqHeader {
  type: number;
  reserved: number;
  sector: bigint;
}

export function encodeBlkHeader(h: BlkReqHeader): Uint8Array {
  if (h.sector < 0n || h.sector >= 1n << 64n) {
    throw new VirtioError('INVALID_ARGUMENT', `sector ${h.sector} is not a u64`);
  }
  const out = new Uint8Array(BLK_REQ_HEADER_SIZE);
  writeU32(out, 0, h.type >>> 0);
  writeU32(out, 4, h.reserved >>> 0);
  writeU64(out, 8, h.sector);
  return out;
}

export function decodeBlkHeader(bytes: Uint8Array): VirtioResult<BlkReqHeader> {
  if (bytes.byteLength < BLK_REQ_HEADER_SIZE) {
    return fail('BAD_BLK_REQUEST', `blk header is ${bytes.byteLength} bytes, needs 16`);
  }
  return ok({
    type: readU32(bytes, 0),
    reserved: readU32(bytes, 4),
    sector: readU64(bytes, 8),
  });
}

/** struct virtio_blk_config (packed), fields through write_zeroes_may_unmap. */
export const VIRTIO_BLK_CONFIG = {
  capacity: { offset: 0, width: 8 },
  size_max: { offset: 8, width: 4 },
  seg_max: { offset: 12, width: 4 },
  geometry_cylinders: { offset: 16, width: 2 },
  geometry_heads: { offset: 18, width: 1 },
  geometry_sectors: { offset: 19, width: 1 },
  blk_size: { offset: 20, width: 4 },
  physical_block_exp: { offset: 24, width: 1 },
  alignment_offset: { offset: 25, width: 1 },
  min_io_size: { offset: 26, width: 2 },
  opt_io_size: { offset: 28, width: 4 },
  wce: { offset: 32, width: 1 },
  num_queues: { offset: 34, width: 2 },
  max_discard_sectors: { offset: 36, width: 4 },
  max_discard_seg: { offset: 40, width: 4 },
  discard_sector_alignment: { offset: 44, width: 4 },
  max_write_zeroes_sectors: { offset: 48, width: 4 },
  max_write_zeroes_seg: { offset: 52, width: 4 },
  write_zeroes_may_unmap: { offset: 56, width: 1 },
} as const satisfies Record<string, RegField>;

/** A piece of guest memory named by a chain. */
export interface Segment {
  addr: BusAddr;
  len: number;
  writable: boolean;
}

/** A blk request cut out of a chain's buffers, independent of how the driver split them. */
export interface BlkRequestLayout {
  /** Pieces holding the 16 header bytes, in order (device-readable). */
  header: Segment[];
  /** Everything between header and status. */
  data: Segment[];
  dataLen: number;
  /** Address of the status byte: the last byte of the chain, device-writable. */
  status: BusAddr;
}

/**
 * Splits a chain into header / data / status by byte position, as spec 5.2.6
 * asks of a VERSION_1 device ("MUST NOT make assumptions about the particular
 * arrangement of descriptors"). The walker has already rejected readable-after-
 * writable, so the header is readable iff its last byte is.
 */
export function splitBlkRequest(buffers: readonly Segment[]): VirtioResult<BlkRequestLayout> {
  const total = buffers.reduce((n, b) => n + b.len, 0);
  if (total < BLK_REQ_HEADER_SIZE + BLK_STATUS_SIZE) {
    return fail('BAD_BLK_REQUEST', `chain holds ${total} bytes, less than header + status (17)`);
  }
  const header: Segment[] = [];
  const data: Segment[] = [];
  let pos = 0;
  for (const b of buffers) {
    let off = 0;
    if (pos < BLK_REQ_HEADER_SIZE && b.len > 0) {
      const take = Math.min(b.len, BLK_REQ_HEADER_SIZE - pos);
      if (b.writable) return fail('BAD_BLK_REQUEST', 'blk header is in a device-writable buffer');
      header.push({ addr: b.addr, len: take, writable: false });
      off = take;
    }
    const end = pos + b.len === total ? b.len - BLK_STATUS_SIZE : b.len;
    if (end > off)
      data.push({ addr: addOffset(b.addr, off), len: end - off, writable: b.writable });
    pos += b.len;
  }
  const last = [...buffers].reverse().find((b) => b.len > 0);
  if (last === undefined || !last.writable) {
    return fail('BAD_BLK_REQUEST', 'blk status byte is not in a device-writable buffer');
  }
  const dataLen = total - BLK_REQ_HEADER_SIZE - BLK_STATUS_SIZE;
  return ok({ header, data, dataLen, status: addOffset(last.addr, last.len - 1) });
}

/**
 * Checks that the data direction matches the request type (IN/GET_ID write to
 * the driver, OUT reads from it). Other types are left to the device, which
 * answers UNSUPP for what it does not implement.
 */
export function checkBlkDirection(type: number, data: readonly Segment[]): VirtioResult<true> {
  const want =
    type === VIRTIO_BLK_T.IN || type === VIRTIO_BLK_T.GET_ID
      ? true
      : type === VIRTIO_BLK_T.OUT
        ? false
        : undefined;
  if (want === undefined) return ok(true);
  const bad = data.find((s) => s.writable !== want);
  return bad === undefined
    ? ok(true)
    : fail(
        'BAD_BLK_REQUEST',
        `blk request type ${type} has a ${bad.writable ? 'writable' : 'readable'} data buffer`,
      );
}
