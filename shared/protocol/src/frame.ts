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

export function encodeFrame(head: unknown, data: Uint8Array = EMPTY): Uint8Array {
  const json = encoder.encode(JSON.stringify(head, bigintAsHex));
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

// Addresses are bigint in code; on the wire they are 0x-hex strings.
function bigintAsHex(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? `0x${value.toString(16)}` : value;
}
