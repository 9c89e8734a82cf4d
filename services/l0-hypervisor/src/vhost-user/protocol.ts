// The vhost-user wire format (QEMU docs/interop/vhost-user.rst): a 12-byte
// header (request, flags, size, little-endian) then `size` bytes of payload;
// file descriptors ride along as SCM_RIGHTS ancillary data. Layouts and
// decoding only; backend.ts gives the messages their meaning.
import { VhostUserError } from './errors.js';

export const HEADER_BYTES = 12;
/** Flags: version 1 in bits 0-1, bit 2 marks a reply, bit 3 asks for one (REPLY_ACK). */
export const FLAG = { VERSION: 0x1, VERSION_MASK: 0x3, REPLY: 0x4, NEED_REPLY: 0x8 } as const;
/** Largest payload we accept: a SET_MEM_TABLE of 8 regions, or GET_CONFIG's 256 bytes plus header. */
export const MAX_PAYLOAD = 8 + 8 * 32;

/** Front-end requests (vhost-user.rst "Front-end message types"). */
export const REQ = {
  GET_FEATURES: 1,
  SET_FEATURES: 2,
  SET_OWNER: 3,
  RESET_OWNER: 4,
  SET_MEM_TABLE: 5,
  SET_LOG_BASE: 6,
  SET_LOG_FD: 7,
  SET_VRING_NUM: 8,
  SET_VRING_ADDR: 9,
  SET_VRING_BASE: 10,
  GET_VRING_BASE: 11,
  SET_VRING_KICK: 12,
  SET_VRING_CALL: 13,
  SET_VRING_ERR: 14,
  GET_PROTOCOL_FEATURES: 15,
  SET_PROTOCOL_FEATURES: 16,
  GET_QUEUE_NUM: 17,
  SET_VRING_ENABLE: 18,
  SET_BACKEND_REQ_FD: 21,
  IOTLB_MSG: 22,
  GET_CONFIG: 24,
  SET_CONFIG: 25,
  GET_MAX_MEM_SLOTS: 36,
} as const;
export const REQ_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(REQ).map(([k, v]) => [v, k]),
);

/** VHOST_USER_F_PROTOCOL_FEATURES: a feature bit of the vhost-user layer, not of virtio. */
export const VHOST_USER_F_PROTOCOL_FEATURES = 30;
/** Protocol feature bits (vhost-user.rst "Protocol features"). */
export const PROTOCOL_F = { MQ: 0, REPLY_ACK: 3, BACKEND_REQ: 5, CONFIG: 9 } as const;
/** Back-end requests on the channel SET_BACKEND_REQ_FD gives (vhost-user.rst "Back-end message types"). */
export const BACKEND_REQ = { IOTLB_MSG: 1 } as const;
/** In SET_VRING_KICK/CALL/ERR's u64: the ring index, and "no fd sent" (poll instead). */
export const VRING_IDX_MASK = 0xffn;
export const VRING_NOFD = 1n << 8n;

export interface Header {
  readonly request: number;
  readonly flags: number;
  readonly size: number;
}

export function decodeHeader(b: Uint8Array): Header {
  const v = new DataView(b.buffer, b.byteOffset, HEADER_BYTES);
  const h = {
    request: v.getUint32(0, true),
    flags: v.getUint32(4, true),
    size: v.getUint32(8, true),
  };
  if ((h.flags & FLAG.VERSION_MASK) !== FLAG.VERSION)
    throw new VhostUserError('BAD_HEADER', `version ${h.flags & FLAG.VERSION_MASK}, expected 1`);
  if (h.flags & FLAG.REPLY) throw new VhostUserError('BAD_HEADER', 'a reply sent to the backend');
  if (h.size > MAX_PAYLOAD)
    throw new VhostUserError('BAD_HEADER', `payload of ${h.size} bytes (max ${MAX_PAYLOAD})`);
  return h;
}

export function encodeReply(
  request: number,
  payload: Uint8Array,
  flags: number = FLAG.VERSION | FLAG.REPLY,
): Uint8Array {
  const out = new Uint8Array(HEADER_BYTES + payload.byteLength);
  const v = new DataView(out.buffer);
  v.setUint32(0, request, true);
  v.setUint32(4, flags, true);
  v.setUint32(8, payload.byteLength, true);
  out.set(payload, HEADER_BYTES);
  return out;
}

/** A payload reader that checks its size first: every field read is in bounds. */
export class Payload {
  private readonly v: DataView;
  constructor(
    readonly request: number,
    readonly bytes: Uint8Array,
  ) {
    this.v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  expect(min: number, max = min): this {
    const n = this.bytes.byteLength;
    if (n < min || n > max)
      throw new VhostUserError(
        'BAD_PAYLOAD',
        `${REQ_NAMES[this.request] ?? this.request}: payload of ${n} bytes, expected ${min === max ? min : `${min}..${max}`}`,
      );
    return this;
  }

  u32(at: number): number {
    return this.v.getUint32(at, true);
  }

  u64(at: number): bigint {
    return this.v.getBigUint64(at, true);
  }
}

export const u64Payload = (n: bigint): Uint8Array => {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, n, true);
  return out;
};

/** VhostUserMemoryRegion: guest_phys_addr, memory_size, userspace_addr, mmap_offset. */
export interface MemRegion {
  readonly guestPhys: bigint;
  readonly bytes: bigint;
  readonly userAddr: bigint;
  readonly mmapOffset: bigint;
}

const REGION_BYTES = 32;
export const MAX_REGIONS = 8;

/** SET_MEM_TABLE: u32 nregions, u32 padding, then the regions. */
export function decodeMemTable(p: Payload): MemRegion[] {
  p.expect(8, 8 + MAX_REGIONS * REGION_BYTES);
  const n = p.u32(0);
  if (n < 1 || n > MAX_REGIONS || p.bytes.byteLength < 8 + n * REGION_BYTES)
    throw new VhostUserError(
      'BAD_PAYLOAD',
      `SET_MEM_TABLE: ${n} regions in ${p.bytes.byteLength} bytes`,
    );
  const regions: MemRegion[] = [];
  for (let i = 0; i < n; i++) {
    const at = 8 + i * REGION_BYTES;
    const r = {
      guestPhys: p.u64(at),
      bytes: p.u64(at + 8),
      userAddr: p.u64(at + 16),
      mmapOffset: p.u64(at + 24),
    };
    if (r.bytes === 0n || r.guestPhys + r.bytes > 1n << 64n || r.userAddr + r.bytes > 1n << 64n)
      throw new VhostUserError('BAD_PAYLOAD', `SET_MEM_TABLE: region ${i} is empty or wraps`);
    regions.push(r);
  }
  return regions;
}

/** VhostUserVringState: u32 index, u32 num. */
export function decodeVringState(p: Payload): { index: number; num: number } {
  p.expect(8);
  return { index: p.u32(0), num: p.u32(4) };
}

/** VhostUserVringAddr: index, flags, then desc, used, avail, log — in QEMU's address space. */
export interface VringAddr {
  readonly index: number;
  readonly flags: number;
  readonly desc: bigint;
  readonly used: bigint;
  readonly avail: bigint;
}

export function decodeVringAddr(p: Payload): VringAddr {
  p.expect(40);
  return { index: p.u32(0), flags: p.u32(4), desc: p.u64(8), used: p.u64(16), avail: p.u64(24) };
}

/** VhostUserConfig: u32 offset, u32 size, u32 flags, then `size` bytes. */
export function decodeConfigRequest(p: Payload): { offset: number; size: number } {
  p.expect(12, 12 + 256);
  const offset = p.u32(0);
  const size = p.u32(4);
  if (size > 256 || offset > 256)
    throw new VhostUserError('BAD_PAYLOAD', `GET_CONFIG of ${size} bytes at ${offset}`);
  return { offset, size };
}

export function encodeConfigReply(offset: number, config: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(12 + size);
  const v = new DataView(out.buffer);
  v.setUint32(0, offset, true);
  v.setUint32(4, size, true);
  out.set(config.subarray(offset, offset + size), 12);
  return out;
}

/** How many fds a request carries: SET_MEM_TABLE one per region, the vring fds one unless NOFD. */
export function fdsNeeded(request: number, p: Payload): number {
  switch (request) {
    case REQ.SET_MEM_TABLE:
      return decodeMemTable(p).length;
    case REQ.SET_VRING_KICK:
    case REQ.SET_VRING_CALL:
    case REQ.SET_VRING_ERR:
      return p.bytes.byteLength === 8 && (p.u64(0) & VRING_NOFD) === 0n ? 1 : 0;
    case REQ.SET_BACKEND_REQ_FD:
    case REQ.SET_LOG_BASE:
    case REQ.SET_LOG_FD:
      return 1;
    default:
      return 0;
  }
}

/** struct vhost_iotlb_msg types and permissions (linux/vhost_types.h). */
export const IOTLB_TYPE = { MISS: 1, UPDATE: 2, INVALIDATE: 3, ACCESS_FAIL: 4 } as const;
export const IOTLB_PERM = { RO: 1, WO: 2, RW: 3 } as const;

/** struct vhost_iotlb_msg: u64 iova, u64 size, u64 uaddr, u8 perm, u8 type, padded to 32 bytes. */
export interface IotlbMsg {
  readonly iova: bigint;
  readonly size: bigint;
  readonly uaddr: bigint;
  readonly perm: number;
  readonly type: number;
}
export const IOTLB_MSG_BYTES = 32;

export function decodeIotlbMsg(p: Payload): IotlbMsg {
  p.expect(26, IOTLB_MSG_BYTES);
  const m = {
    iova: p.u64(0),
    size: p.u64(8),
    uaddr: p.u64(16),
    perm: p.bytes[24] ?? 0,
    type: p.bytes[25] ?? 0,
  };
  if (m.iova + m.size > 1n << 64n)
    throw new VhostUserError('BAD_PAYLOAD', `IOTLB_MSG: [${m.iova}, +${m.size}) wraps`);
  return m;
}

export function encodeIotlbMsg(m: IotlbMsg): Uint8Array {
  const out = new Uint8Array(IOTLB_MSG_BYTES);
  const v = new DataView(out.buffer);
  v.setBigUint64(0, m.iova, true);
  v.setBigUint64(8, m.size, true);
  v.setBigUint64(16, m.uaddr, true);
  out[24] = m.perm;
  out[25] = m.type;
  return out;
}
