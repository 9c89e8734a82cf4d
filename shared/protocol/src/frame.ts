import { ProtocolError } from './errors.js';

/**
 * Wire frame: u32 little-endian length of a UTF-8 JSON head, the head, then
 * raw bytes (memory contents) as they are. Bulk data never goes through JSON.
 * A hot message may travel with a binary head instead (codec-binary.ts): the
 * first u32 is then a layout tag, above any head length a JSON frame may have,
 * followed by the u32 length of the binary head.
 */
export interface Frame {
  readonly head: unknown;
  readonly data: Uint8Array;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });
const EMPTY = new Uint8Array(0);
/** A head larger than this is refused before parsing: heads describe, data carries. */
export const MAX_HEAD_BYTES = 1 << 20;

/**
 * What a frame carries after its head: bytes, or parts in order (a MemAccess
 * reply's loads), copied straight into the frame rather than joined first.
 */
export type FrameData = Uint8Array | readonly Uint8Array[];

function dataLength(data: FrameData): number {
  if (data instanceof Uint8Array) return data.byteLength;
  let n = 0;
  for (const p of data) n += p.byteLength;
  return n;
}

function putData(out: Uint8Array, at: number, data: FrameData): void {
  if (data instanceof Uint8Array) {
    out.set(data, at);
    return;
  }
  for (const p of data) {
    out.set(p, at);
    at += p.byteLength;
  }
}

/** A frame's data from its parts in order, as a MemAccess carries its stores and loads (one part: as is, no copy). */
export function joinData(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(dataLength(parts));
  putData(out, 0, parts);
  return out;
}

export function encodeFrame(head: unknown, data: FrameData = EMPTY): Uint8Array {
  const json = encoder.encode(headJson(head));
  const out = new Uint8Array(4 + json.length + dataLength(data));
  new DataView(out.buffer).setUint32(0, json.length, true);
  out.set(json, 4);
  putData(out, 4 + json.length, data);
  return out;
}

/** Tags of binary heads: 0xffffff00 + layout number (any JSON head length is far below). */
const BINARY_TAG_BASE = 0xffff_ff00;
const BINARY_PREFIX = 8;

/** A frame of binary head `layout` (1..255): `headBytes` written by `writeHead` into the frame itself, then `data`. */
export function encodeBinaryFrame(
  layout: number,
  headBytes: number,
  writeHead: (view: DataView, at: number) => void,
  data: FrameData = EMPTY,
): Uint8Array {
  const out = new Uint8Array(BINARY_PREFIX + headBytes + dataLength(data));
  const view = new DataView(out.buffer);
  view.setUint32(0, BINARY_TAG_BASE + layout, true);
  view.setUint32(4, headBytes, true);
  writeHead(view, BINARY_PREFIX);
  putData(out, BINARY_PREFIX + headBytes, data);
  return out;
}

/** A binary frame's parts: its layout, its head as a view on the frame, and its data. */
export interface BinaryFrame {
  readonly layout: number;
  readonly view: DataView;
  readonly start: number;
  readonly end: number;
  readonly data: Uint8Array;
}

/** The binary frame in `bytes`, or null when they hold a JSON frame (or too few bytes for either). */
export function binaryFrameOf(bytes: Uint8Array): BinaryFrame | null {
  if (bytes.length < 4) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tag = view.getUint32(0, true);
  if (tag <= BINARY_TAG_BASE || tag > BINARY_TAG_BASE + 0xff) return null;
  const headLen = bytes.length >= BINARY_PREFIX ? view.getUint32(4, true) : -1;
  if (headLen < 0 || BINARY_PREFIX + headLen > bytes.length) {
    throw new ProtocolError(
      'BAD_FRAME',
      `binary head of ${headLen < 0 ? 'unknown' : headLen} bytes does not fit a frame of ${bytes.length} bytes`,
    );
  }
  return {
    layout: tag - BINARY_TAG_BASE,
    view,
    start: BINARY_PREFIX,
    end: BINARY_PREFIX + headLen,
    data: bytes.subarray(BINARY_PREFIX + headLen),
  };
}

/** Decodes a JSON frame; a binary one is refused here (its message's codec decodes it). */
export function decodeFrame(bytes: Uint8Array): Frame {
  if (bytes.length < 4) {
    throw new ProtocolError(
      'BAD_FRAME',
      `frame of ${bytes.length} bytes is shorter than its 4-byte head length`,
    );
  }
  const headLen = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0, true);
  if (headLen > MAX_HEAD_BYTES || 4 + headLen > bytes.length) {
    throw new ProtocolError(
      'BAD_FRAME',
      `head length ${headLen} does not fit a frame of ${bytes.length} bytes`,
    );
  }
  let text: string;
  try {
    text = decoder.decode(bytes.subarray(4, 4 + headLen));
  } catch (cause) {
    throw new ProtocolError('BAD_FRAME', 'head is not valid UTF-8', { cause });
  }
  let head: unknown;
  try {
    head = JSON.parse(text);
  } catch (cause) {
    throw new ProtocolError('BAD_JSON', `head is not JSON: ${(cause as Error).message}`, {
      cause,
    });
  }
  return { head, data: bytes.subarray(4 + headLen) };
}

/**
 * Heads are plain JSON almost always; a replacer makes V8 leave its fast
 * path and call back per value (a 64 Ki-element array costs ~100x more), so
 * it is used only when a bigint made the plain stringify throw.
 */
function headJson(head: unknown): string {
  try {
    return JSON.stringify(head);
  } catch (err) {
    if (err instanceof TypeError && /BigInt/i.test(err.message))
      return JSON.stringify(head, bigintAsHex);
    throw err;
  }
}

// Addresses are bigint in code; on the wire they are 0x-hex strings.
function bigintAsHex(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? `0x${value.toString(16)}` : value;
}
