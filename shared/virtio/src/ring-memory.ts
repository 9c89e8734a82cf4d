import { ADDR_MAX, toHex } from '@nestlab/addr';
import type { BusAddr } from '@nestlab/addr';
import { fail, ok } from './errors.js';
import type { VirtioErrorKind, VirtioResult } from './errors.js';

/**
 * How a device reads guest memory. Async because in the lab a device's DMA
 * may cross an IOMMU service over the network. Implementations may throw or
 * reject; readRing turns that into MEMORY_UNREACHABLE.
 */
export interface RingMemory {
  read(addr: BusAddr, len: number): Promise<Uint8Array>;
  /**
   * The same read, answered at once when the memory can (no IOMMU, an IOTLB
   * hit): the bytes, or a promise only when it must wait. The walker and the
   * queue prefer it, so a walk over local memory takes no promise per field.
   */
  readNow?(addr: BusAddr, len: number): Uint8Array | Promise<Uint8Array>;
}

/** A value now, or a promise of it when the memory had to wait. */
export type Now<T> = T | Promise<T>;

/** Whether a Now<T> is still to come (a Uint8Array or a result is never a thenable). */
export const isPending = <T>(v: Now<T>): v is Promise<T> =>
  typeof (v as { then?: unknown } | null)?.then === 'function';

/** True when [addr, addr+len) would go past 2^64 - 1. */
export const wrapsAddressSpace = (addr: bigint, len: number | bigint): boolean =>
  BigInt(len) > 0n && addr + BigInt(len) - 1n > ADDR_MAX;

// A cause that classifies itself (e.g. a NATS timeout marked transient) keeps
// its kind; anything else is blamed on the address the guest gave.
function causeKind(cause: unknown): VirtioErrorKind | undefined {
  if (typeof cause === 'object' && cause !== null && 'kind' in cause) {
    const k = (cause as { kind: unknown }).kind;
    if (k === 'guest' || k === 'transient' || k === 'internal') return k;
  }
  return undefined;
}

/** Reads `len` bytes for the named ring field, never throwing. */
export function readRing(
  mem: RingMemory,
  addr: BusAddr,
  len: number,
  what: string,
): Promise<VirtioResult<Uint8Array>> {
  return Promise.resolve(readRingNow(mem, addr, len, what));
}

/** readRing, answered at once when the memory answers at once (RingMemory.readNow). */
export function readRingNow(
  mem: RingMemory,
  addr: BusAddr,
  len: number,
  what: string,
): Now<VirtioResult<Uint8Array>> {
  if (wrapsAddressSpace(addr, len)) {
    return fail('ADDR_WRAP', `${what} at ${toHex(addr)} + ${len} wraps 2^64`);
  }
  let got: Now<Uint8Array>;
  try {
    got = mem.readNow ? mem.readNow(addr, len) : mem.read(addr, len);
  } catch (cause) {
    return unreachable(addr, what, cause);
  }
  if (isPending(got)) {
    return got.then(
      (bytes) => checked(bytes, addr, len, what),
      (cause: unknown) => unreachable(addr, what, cause),
    );
  }
  return checked(got, addr, len, what);
}

function unreachable(addr: BusAddr, what: string, cause: unknown): VirtioResult<Uint8Array> {
  const detail = cause instanceof Error ? cause.message : String(cause);
  return fail('MEMORY_UNREACHABLE', `cannot read ${what} at ${toHex(addr)}: ${detail}`, {
    cause,
    kind: causeKind(cause),
  });
}

function checked(
  bytes: Uint8Array,
  addr: BusAddr,
  len: number,
  what: string,
): VirtioResult<Uint8Array> {
  if (!(bytes instanceof Uint8Array) || bytes.byteLength !== len) {
    return fail(
      'MEMORY_UNREACHABLE',
      `reading ${what} at ${toHex(addr)} returned ${(bytes as Uint8Array | undefined)?.byteLength ?? 'no'} bytes, not ${len}`,
    );
  }
  return ok(bytes);
}
