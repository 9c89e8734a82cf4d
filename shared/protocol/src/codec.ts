import { binaryFrameOf, decodeFrame, encodeFrame, type FrameData } from './frame.js';
import {
  decodeBinaryReply,
  decodeBinaryRequest,
  encodeBinaryReply,
  encodeBinaryRequest,
} from './codec-binary.js';
import { ProtocolError, RemoteError } from './errors.js';
import { isCodedError, type CodedError } from './error-family.js';
import { ReplyHead } from './envelope.js';
import { validator } from './schema-kit.js';
import type { MessageDef, ReplyOf, RequestOf } from './message.js';

const replyHead = validator(ReplyHead);

export interface Decoded<T> {
  readonly head: T;
  readonly data: Uint8Array;
}

/**
 * Validates an incoming request frame against its message schema. A binary
 * head (codec-binary.ts) is checked by its decoder, against the same limits.
 */
export function decodeRequest<M extends MessageDef>(
  def: M,
  bytes: Uint8Array,
): Decoded<RequestOf<M>> {
  const binary = binaryFrameOf(bytes);
  if (binary) {
    const head = decodeBinaryRequest(def, binary) as RequestOf<M>;
    checkData(def, binary.data.length);
    return { head, data: binary.data };
  }
  const frame = decodeFrame(bytes);
  const head = def.request.parse(frame.head, def.name) as RequestOf<M>;
  checkData(def, frame.data.length);
  return { head, data: frame.data };
}

export function encodeRequest<M extends MessageDef>(
  def: M,
  head: RequestOf<M>,
  data?: FrameData,
): Uint8Array {
  return encodeBinaryRequest(def, head, data) ?? encodeFrame(head, data);
}

export function encodeReply<M extends MessageDef>(
  def: M,
  body: ReplyOf<M>,
  data?: FrameData,
): Uint8Array {
  return encodeBinaryReply(def, body, data) ?? encodeFrame({ ok: true, body }, data);
}

export function encodeErrorReply(err: CodedError): Uint8Array {
  return encodeFrame({
    ok: false,
    error: { code: err.code, message: err.message.slice(0, 4096), kind: err.kind },
  });
}

/** Turns any thrown value into what a caller may see: typed errors keep their code. */
export function toCodedError(err: unknown): CodedError {
  if (isCodedError(err)) return err;
  return new ProtocolError('INTERNAL', err instanceof Error ? err.message : String(err));
}

/** Validates a reply frame; an error reply becomes a thrown RemoteError with its code. */
export function decodeReply<M extends MessageDef>(
  def: M,
  subject: string,
  bytes: Uint8Array,
): Decoded<ReplyOf<M>> {
  // A binary reply is an ok one (errors travel as JSON).
  const binary = binaryFrameOf(bytes);
  if (binary) return { head: decodeBinaryReply(def, binary) as ReplyOf<M>, data: binary.data };
  const frame = decodeFrame(bytes);
  const head = replyHead.parse(frame.head, `${def.name} reply`);
  if (!head.ok)
    throw new RemoteError(head.error.code, head.error.message, head.error.kind, subject);
  if (!def.reply)
    throw new ProtocolError('UNKNOWN_MESSAGE', `${def.name} is an event and has no reply`);
  return { head: def.reply.parse(head.body, `${def.name} reply`) as ReplyOf<M>, data: frame.data };
}

function checkData(def: MessageDef, len: number): void {
  if (def.data === 'none' && len > 0) {
    throw new ProtocolError('BAD_FRAME', `${def.name} carries no data, got ${len} bytes`);
  }
  if (def.data === 'required' && len === 0) {
    throw new ProtocolError('BAD_FRAME', `${def.name} needs data bytes after its head`);
  }
}
