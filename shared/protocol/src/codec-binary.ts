// Binary heads for the hottest message, MemAccess (issue 17): a batch of CPU
// stores and loads costs ~430 ns per op to decode as JSON (a string and an
// object per op, then the schema's regex per address); in 13 bytes per op it
// costs a fraction. The sender picks the binary form only for a head it can
// carry exactly (canonical hex, ASCII io ids, no unknown fields), else JSON,
// so a receiver decodes the same head either way and refuses what the schema
// refuses: every value range the schema sets is checked here on receipt
// (SCHEMA_INVALID), every structural fault is BAD_FRAME.
import { ProtocolError } from './errors.js';
import { encodeBinaryFrame, type BinaryFrame, type FrameData } from './frame.js';
import { MAX_ACCESS_LEN, MemAccess, type MemOp } from './messages/l0.js';
import type { MessageDef, ReplyOf, RequestOf } from './message.js';

type AccessHead = RequestOf<typeof MemAccess>;
type AccessReply = ReplyOf<typeof MemAccess>;

/** Layout numbers (a frame's tag); never reuse one for another shape. */
const LAYOUT = { accessRequest: 1, accessReply: 2 } as const;

const FLAG_XEN = 1;
const FLAG_DRAINED = 2;
const FLAG_IO_IDS = 4;
const FLAGS_KNOWN = FLAG_XEN | FLAG_DRAINED | FLAG_IO_IDS;
const OP_BYTES = 13;
const MAX_OPS = 4096;
const MAX_IO_IDS = 4096;
const MAX_IO_ID_CHARS = 64;
const MAX_DOM_ID = 0x7ff0;
const TWO_32 = 2 ** 32;

/** A MemAccess request as a binary frame, or null when its head needs JSON to travel exactly. */
export function encodeBinaryRequest(
  def: MessageDef,
  head: unknown,
  data: FrameData | undefined,
): Uint8Array | null {
  if (def !== MemAccess || !isCarried(head as AccessHead)) return null;
  const h = head as AccessHead;
  const ops = h.ops;
  const ioIds = h.ioIds;
  let bytes = 1 + (h.requester.kind === 'cpu' ? 2 : 0) + 2 + ops.length * OP_BYTES;
  if (ioIds) {
    bytes += 2;
    for (const id of ioIds) bytes += 1 + id.length;
  }
  const flags =
    (h.requester.kind === 'xen' ? FLAG_XEN : 0) |
    (h.afterDoorbell === 'drained' ? FLAG_DRAINED : 0) |
    (ioIds ? FLAG_IO_IDS : 0);
  let carried = true;
  const frame = encodeBinaryFrame(
    LAYOUT.accessRequest,
    bytes,
    (v, start) => {
      let at = start;
      v.setUint8(at++, flags);
      if (h.requester.kind === 'cpu') {
        v.setUint16(at, h.requester.domain, true);
        at += 2;
      }
      v.setUint16(at, ops.length, true);
      at += 2;
      // Each op is checked as it is written; one the binary form cannot carry sends the head as JSON.
      for (const op of ops) {
        if (!isCarriedOp(op) || !writeHexU64(v, at + 1, op.addr)) {
          carried = false;
          return;
        }
        v.setUint8(at, op.op === 'write' ? 1 : 0);
        v.setUint32(at + 9, op.len, true);
        at += OP_BYTES;
      }
      if (ioIds) {
        v.setUint16(at, ioIds.length, true);
        at += 2;
        for (const id of ioIds) {
          v.setUint8(at++, id.length);
          for (let i = 0; i < id.length; i++) v.setUint8(at++, id.charCodeAt(i));
        }
      }
    },
    data,
  );
  return carried ? frame : null;
}

/** The head of a binary request frame, checked as the schema would check its JSON form. */
export function decodeBinaryRequest(def: MessageDef, f: BinaryFrame): unknown {
  if (def !== MemAccess || f.layout !== LAYOUT.accessRequest) throw wrongLayout(def, f);
  const r = new Reader(f, def.name);
  const flags = r.u8();
  if ((flags & ~FLAGS_KNOWN) !== 0) throw r.bad(`unknown flags 0x${flags.toString(16)}`);
  let requester: AccessHead['requester'] = { kind: 'xen' };
  if ((flags & FLAG_XEN) === 0) {
    const domain = r.u16();
    if (domain > MAX_DOM_ID) throw r.invalid(`/requester/domain ${domain} is above ${MAX_DOM_ID}`);
    requester = { kind: 'cpu', domain };
  }
  const count = r.u16();
  if (count < 1 || count > MAX_OPS) throw r.invalid(`/ops holds ${count} ops, not 1..${MAX_OPS}`);
  r.need(count * OP_BYTES);
  const ops: MemOp[] = new Array<MemOp>(count);
  const v = f.view;
  for (let i = 0, at = r.at; i < count; i++, at += OP_BYTES) {
    const kind = v.getUint8(at);
    if (kind > 1) throw r.invalid(`/ops/${i}/op ${kind} is neither read nor write`);
    const len = v.getUint32(at + 9, true);
    if (len < 1 || len > MAX_ACCESS_LEN)
      throw r.invalid(`/ops/${i}/len ${len} is not 1..${MAX_ACCESS_LEN}`);
    ops[i] = { op: kind === 1 ? 'write' : 'read', addr: hexU64(v, at + 1), len };
  }
  r.at += count * OP_BYTES;
  const head: AccessHead = { requester, ops };
  if (flags & FLAG_IO_IDS) head.ioIds = readIoIds(r);
  if (flags & FLAG_DRAINED) head.afterDoorbell = 'drained';
  r.end();
  return head;
}

function readIoIds(r: Reader): string[] {
  const n = r.u16();
  if (n > MAX_IO_IDS) throw r.invalid(`/ioIds holds ${n} ids, more than ${MAX_IO_IDS}`);
  const ids = new Array<string>(n);
  for (let i = 0; i < n; i++) {
    const len = r.u8();
    if (len > MAX_IO_ID_CHARS)
      throw r.invalid(`/ioIds/${i} is ${len} characters, more than ${MAX_IO_ID_CHARS}`);
    r.need(len);
    let s = '';
    for (let k = 0; k < len; k++) {
      const c = r.f.view.getUint8(r.at + k);
      if (c > 0x7f) throw r.bad(`/ioIds/${i} is not ASCII`);
      s += String.fromCharCode(c);
    }
    r.at += len;
    ids[i] = s;
  }
  return ids;
}

/** A MemAccess reply as a binary frame, or null when its body needs JSON. */
export function encodeBinaryReply(
  def: MessageDef,
  body: unknown,
  data: FrameData | undefined,
): Uint8Array | null {
  if (def !== MemAccess || !isCarriedReply(body)) return null;
  const lens = body.readLens;
  return encodeBinaryFrame(
    LAYOUT.accessReply,
    4 + lens.length * 4,
    (v, start) => {
      v.setUint32(start, lens.length, true);
      for (let i = 0; i < lens.length; i++) v.setUint32(start + 4 + i * 4, lens[i]!, true);
    },
    data,
  );
}

/** The body of a binary (ok) reply frame. */
export function decodeBinaryReply(def: MessageDef, f: BinaryFrame): unknown {
  if (def !== MemAccess || f.layout !== LAYOUT.accessReply) throw wrongLayout(def, f);
  const r = new Reader(f, `${def.name} reply`);
  const n = r.u32();
  r.need(n * 4);
  const readLens = new Array<number>(n);
  for (let i = 0; i < n; i++) readLens[i] = f.view.getUint32(r.at + i * 4, true);
  r.at += n * 4;
  r.end();
  return { readLens } satisfies AccessReply;
}

function wrongLayout(def: MessageDef, f: BinaryFrame): Error {
  return new ProtocolError('BAD_FRAME', `${def.name}: no binary head of layout ${f.layout}`);
}

/** Reads a binary head in order; running past its end is BAD_FRAME. */
class Reader {
  at: number;
  constructor(
    readonly f: BinaryFrame,
    private readonly what: string,
  ) {
    this.at = f.start;
  }
  need(n: number): void {
    if (this.at + n > this.f.end) throw this.bad('binary head ends early');
  }
  u8(): number {
    this.need(1);
    return this.f.view.getUint8(this.at++);
  }
  u16(): number {
    this.need(2);
    const v = this.f.view.getUint16(this.at, true);
    this.at += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.f.view.getUint32(this.at, true);
    this.at += 4;
    return v;
  }
  end(): void {
    if (this.at !== this.f.end) throw this.bad(`${this.f.end - this.at} bytes after the head`);
  }
  bad(reason: string): Error {
    return new ProtocolError('BAD_FRAME', `${this.what}: ${reason}`);
  }
  invalid(reason: string): Error {
    return new ProtocolError('SCHEMA_INVALID', `${this.what}: ${reason}`);
  }
}

const REQUEST_KEYS = new Set(['requester', 'ops', 'ioIds', 'afterDoorbell']);

/** Whether the binary form carries `h` exactly (its ops are checked as they are written). */
function isCarried(h: AccessHead): boolean {
  if (typeof h !== 'object' || h === null) return false;
  for (const k in h) {
    const own = Object.prototype.hasOwnProperty.call(h, k);
    if (!own || !REQUEST_KEYS.has(k) || (h as Record<string, unknown>)[k] === undefined)
      return false;
  }
  const q = h.requester as Record<string, unknown> | null;
  if (typeof q !== 'object' || q === null || !plainKeys(q, q['kind'] === 'cpu' ? 2 : 1))
    return false;
  if (q['kind'] === 'cpu') {
    const d = q['domain'];
    if (typeof d !== 'number' || !Number.isInteger(d) || d < 0 || d > MAX_DOM_ID) return false;
  } else if (q['kind'] !== 'xen') return false;
  if (h.afterDoorbell !== undefined && h.afterDoorbell !== 'drained') return false;
  const ops = h.ops as unknown;
  if (!Array.isArray(ops) || ops.length < 1 || ops.length > MAX_OPS) return false;
  const ids = h.ioIds as unknown;
  if (ids === undefined) return true;
  if (!Array.isArray(ids) || ids.length > MAX_IO_IDS) return false;
  for (const id of ids as unknown[]) if (!isShortAscii(id)) return false;
  return true;
}

function isCarriedOp(op: MemOp): boolean {
  return (
    typeof op === 'object' &&
    op !== null &&
    (op.op === 'read' || op.op === 'write') &&
    Number.isInteger(op.len) &&
    op.len >= 1 &&
    op.len <= MAX_ACCESS_LEN &&
    plainKeys(op, 3)
  );
}

function isCarriedReply(body: unknown): body is AccessReply {
  if (typeof body !== 'object' || body === null || !plainKeys(body, 1)) return false;
  const lens = (body as Record<string, unknown>)['readLens'];
  if (!Array.isArray(lens)) return false;
  for (const n of lens as unknown[])
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n >= TWO_32) return false;
  return true;
}

/** Exactly `n` own enumerable keys and nothing inherited to stand in for one (V8 answers from its key cache). */
function plainKeys(o: object, n: number): boolean {
  const proto: unknown = Object.getPrototypeOf(o);
  return (proto === Object.prototype || proto === null) && Object.keys(o).length === n;
}

function isShortAscii(s: unknown): boolean {
  if (typeof s !== 'string' || s.length > MAX_IO_ID_CHARS) return false;
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}

/**
 * Writes `0x` and 1-16 lower-case hex digits without a leading zero (what
 * toHex writes, so it comes back the same) as a u64 little-endian; false for
 * any other string.
 */
function writeHexU64(v: DataView, at: number, hex: unknown): boolean {
  if (typeof hex !== 'string') return false;
  const n = hex.length;
  if (n < 3 || n > 18 || hex.charCodeAt(0) !== 0x30 || hex.charCodeAt(1) !== 0x78) return false;
  if (n > 3 && hex.charCodeAt(2) === 0x30) return false;
  const split = Math.max(2, n - 8);
  let hi = 0;
  let lo = 0;
  for (let i = 2; i < n; i++) {
    const c = hex.charCodeAt(i);
    const d = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : -1;
    if (d < 0) return false;
    if (i < split) hi = hi * 16 + d;
    else lo = lo * 16 + d;
  }
  v.setUint32(at, lo, true);
  v.setUint32(at + 4, hi, true);
  return true;
}

/** A u64 little-endian as canonical hex (toHex's form). */
function hexU64(v: DataView, at: number): string {
  const lo = v.getUint32(at, true);
  const hi = v.getUint32(at + 4, true);
  return hi === 0
    ? `0x${lo.toString(16)}`
    : `0x${hi.toString(16)}${lo.toString(16).padStart(8, '0')}`;
}
