import { ProtocolError } from './errors.js';

/** Service tokens in subjects; the folder names under services/ map onto these. */
export const SERVICE_TOKENS = ['l0', 'xen', 'dom0', 'iommu', 'lab'] as const;
export type ServiceToken = (typeof SERVICE_TOKENS)[number];

// A token may not contain the separator or wildcards; keep it to a safe alphabet.
const TOKEN = /^[A-Za-z0-9_-]{1,64}$/;

export function assertToken(what: string, token: string): string {
  if (!TOKEN.test(token)) {
    throw new ProtocolError(
      'BAD_SUBJECT',
      `${what} ${JSON.stringify(token)} is not a subject token (A-Z a-z 0-9 _ -)`,
    );
  }
  return token;
}

/** `nestlab.<stack>.<service>.<object>.<verb>`; object may span several tokens. */
export function subject(
  stack: string,
  service: ServiceToken,
  object: string,
  verb: string,
): string {
  assertToken('stack', stack);
  for (const part of object.split('.')) assertToken('object', part);
  assertToken('verb', verb);
  return `nestlab.${stack}.${service}.${object}.${verb}`;
}

/** Everything one service of one stack serves. */
export const serviceWildcard = (stack: string, service: ServiceToken) =>
  `nestlab.${assertToken('stack', stack)}.${service}.>`;

/**
 * Where one seat of one stack receives its replies: `_INBOX.<stack>.<seat>`.
 * NATS permissions let each seat subscribe only under its own prefix, so no
 * one reads another seat's (or another stack's) replies.
 */
export const inboxPrefix = (stack: string, seat: ServiceToken) =>
  `_INBOX.${assertToken('stack', stack)}.${seat}`;

/** A PCI address like 0000:00:04.0 as one subject token: pci-0000-00-04-0. */
export function deviceToken(bdf: string): string {
  const m = /^([0-9a-f]{4}):([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$/i.exec(bdf);
  if (!m)
    throw new ProtocolError(
      'BAD_SUBJECT',
      `${JSON.stringify(bdf)} is not a PCI address dddd:bb:ss.f`,
    );
  return `pci-${m[1]}-${m[2]}-${m[3]}-${m[4]}`.toLowerCase();
}
