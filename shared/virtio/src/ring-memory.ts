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
}

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
export async function readRing(
  mem: RingMemory,
  addr: BusAddr,
  len: number,
  what: string,
): Promise<VirtioResult<Uint8Array>> {
  if (wrapsAddressSpace(addr, len)) {
    return fail('ADDR_WRAP', `${what} at ${toHex(addr)} + ${len} wraps 2^64`);
  }
  let bytes: Uint8Array;
  try {
    bytes = await mem.read(addr, len);
  } catch (cause) {
    const detail = cause instanceof Error ? cause.message : String(cause);
    return fail('MEMORY_UNREACHABLE', `cannot read ${what} at ${toHex(addr)}: ${detail}`, {
      cause,
      kind: causeKind(cause),
    });
  }
  if (!(bytes instanceof Uint8Array) || bytes.byteLength !== len) {
    return fail(
      'MEMORY_UNREACHABLE',
      `reading ${what} at ${toHex(addr)} returned ${bytes?.byteLength ?? 'no'} bytes, not ${len}`,
    );
  }
  return ok(bytes);
}
