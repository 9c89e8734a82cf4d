import { ProtocolError } from './errors.js';

/**
 * Wire frame: u32 little-endian length of a UTF-8 JSON head, the head, then
 * raw bytes (memory contents) as they are. Bulk data never goes through JSON.
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

/** A frame's data from its parts in order, as a MemAccess carries its stores and loads (one part: as is, no copy). */
export function joinData(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

export function encodeFrame(head: unknown, data: Uint8Array = EMPTY): Uint8Array {
  const json = encoder.encode(headJson(head));
  const out = new Uint8Array(4 + json.length + data.length);
  new DataView(out.buffer).setUint32(0, json.length, true);
  out.set(json, 4);
  out.set(data, 4 + json.length);
  return out;
}

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
