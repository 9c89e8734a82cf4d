import { AddrError } from './errors.js';
import type {
  BusAddr,
  HostPhysAddr,
  Layer,
  LayerAddr,
  MachineAddr,
  Mfn,
  Pfn,
  PseudoPhysAddr,
} from './layers.js';

export const ADDR_MAX = (1n << 64n) - 1n;
export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 1 << PAGE_SHIFT;
const PAGE_MASK = BigInt(PAGE_SIZE - 1);
/** Largest frame number of a 64-bit address space; below 2^53, so a number holds it. */
export const FRAME_MAX = Number(ADDR_MAX >> BigInt(PAGE_SHIFT));

function checked(value: bigint, layer: Layer): bigint {
  if (value < 0n || value > ADDR_MAX) {
    throw new AddrError('ADDR_OUT_OF_RANGE', `${layer} address ${value} is outside 0..2^64-1`);
  }
  return value;
}

function checkedFrame(value: number, kind: string): number {
  if (!Number.isSafeInteger(value) || value < 0 || value > FRAME_MAX) {
    throw new AddrError('FRAME_OUT_OF_RANGE', `${kind} ${value} is not a frame number`);
  }
  return value;
}

// The only places a raw number becomes a layer's value: reading the wire, a
// table a service owns (P2M, memslots, page tables) or a test. Crossing from
// one layer to another goes through translate.ts instead.
export const pseudoPhysAddr = (v: bigint) => checked(v, 'pseudo_phys') as PseudoPhysAddr;
export const machineAddr = (v: bigint) => checked(v, 'machine') as MachineAddr;
export const busAddr = (v: bigint) => checked(v, 'bus') as BusAddr;
export const hostPhysAddr = (v: bigint) => checked(v, 'host_phys') as HostPhysAddr;
export const pfn = (v: number) => checkedFrame(v, 'pfn') as Pfn;
export const mfn = (v: number) => checkedFrame(v, 'mfn') as Mfn;

const MAKERS: { [L in Layer]: (v: bigint) => LayerAddr[L] } = {
  pseudo_phys: pseudoPhysAddr,
  machine: machineAddr,
  bus: busAddr,
  host_phys: hostPhysAddr,
};

export function addrOf<L extends Layer>(layer: L, value: bigint): LayerAddr[L] {
  return MAKERS[layer](value);
}

export const pfnOf = (a: PseudoPhysAddr) => pfn(Number(a >> BigInt(PAGE_SHIFT)));
export const mfnOf = (a: MachineAddr) => mfn(Number(a >> BigInt(PAGE_SHIFT)));
export const pageOffset = (a: bigint) => Number(a & PAGE_MASK);

export const pseudoPhysOfFrame = (f: Pfn, offset = 0) =>
  pseudoPhysAddr((BigInt(f) << BigInt(PAGE_SHIFT)) + BigInt(offset));
export const machineOfFrame = (f: Mfn, offset = 0) =>
  machineAddr((BigInt(f) << BigInt(PAGE_SHIFT)) + BigInt(offset));

/** Adds a byte offset within the same layer; fails instead of wrapping past 2^64. */
export function addOffset<A extends bigint>(a: A, offset: number | bigint): A {
  const sum = a + BigInt(offset);
  if (sum < 0n || sum > ADDR_MAX) {
    throw new AddrError(
      'ADDR_OUT_OF_RANGE',
      `0x${a.toString(16)} + ${offset} wraps the address space`,
    );
  }
  return sum as A;
}

/** Splits [addr, addr+len) into page-bounded pieces: DMA crosses layers one page at a time. */
export function pageSpans<A extends bigint>(
  addr: A,
  len: number,
): { addr: A; len: number; offset: number }[] {
  const spans: { addr: A; len: number; offset: number }[] = [];
  let done = 0;
  while (done < len) {
    const at = addOffset(addr, done);
    const room = PAGE_SIZE - pageOffset(at);
    const take = Math.min(room, len - done);
    spans.push({ addr: at, len: take, offset: done });
    done += take;
  }
  return spans;
}
