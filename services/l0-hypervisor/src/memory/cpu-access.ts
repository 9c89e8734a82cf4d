// MemAccess: CPU loads and stores at machine addresses, in order. RAM goes
// through the memslots after the ownership check Xen's page tables imply
// (CpuFrames); addresses in a BAR are register accesses (ARCHITECTURE §4 step 3).
import { PAGE_SHIFT, machineAddr, pageSpans, parseHex, toHex } from '@nestlab/addr';
import type { MachineAddr } from '@nestlab/addr';
import type { MemOp, Requester } from '@nestlab/protocol';
import { L0Error } from '../errors.js';
import type { PciBus } from '../pci/bus.js';
import type { CpuFrames } from './cpu-frames.js';
import type { MachineMemory } from './machine-memory.js';

export interface CpuAccessDeps {
  readonly mem: MachineMemory;
  readonly frames: CpuFrames;
  readonly bus: PciBus;
}

export interface CpuAccessResult {
  /** Length of each read op, in op order (writes have no entry). */
  readLens: number[];
  data: Uint8Array;
}

export async function cpuAccess(
  deps: CpuAccessDeps,
  requester: Requester,
  ops: readonly MemOp[],
  data: Uint8Array,
): Promise<CpuAccessResult> {
  const writeBytes = ops.reduce((n, op) => n + (op.op === 'write' ? op.len : 0), 0);
  if (writeBytes !== data.byteLength) {
    throw new L0Error(
      'DATA_LENGTH_MISMATCH',
      `write ops need ${writeBytes} data bytes, the message carries ${data.byteLength}`,
    );
  }
  const reads: Uint8Array[] = [];
  let at = 0;
  for (const [i, op] of ops.entries()) {
    const addr = parseAddr(op.addr, i);
    const payload = op.op === 'write' ? data.subarray(at, (at += op.len)) : undefined;
    try {
      const out = await one(deps, requester, addr, op.len, payload);
      if (out) reads.push(out);
    } catch (err) {
      if (err instanceof L0Error)
        throw new L0Error(err.code, `op ${i}: ${err.message}`, { kind: err.kind });
      throw err;
    }
  }
  const total = reads.reduce((n, r) => n + r.byteLength, 0);
  const out = new Uint8Array(total);
  let o = 0;
  for (const r of reads) {
    out.set(r, o);
    o += r.byteLength;
  }
  return { readLens: reads.map((r) => r.byteLength), data: out };
}

function parseAddr(text: string, i: number): MachineAddr {
  try {
    return parseHex('machine', text);
  } catch (cause) {
    throw new L0Error('MEMORY_UNREACHABLE', `op ${i}: ${String(cause)}`, { kind: 'input' });
  }
}

async function one(
  deps: CpuAccessDeps,
  requester: Requester,
  addr: MachineAddr,
  len: number,
  payload: Uint8Array | undefined,
): Promise<Uint8Array | undefined> {
  const bar = deps.bus.barAt(addr, len);
  if (bar) {
    // MMIO: any domain may touch BARs (fixed decision); Xen decides who maps them.
    if (payload) {
      await bar.fn.transport.write(bar.offset, payload);
      return undefined;
    }
    return bar.fn.transport.read(bar.offset, len);
  }
  if (deps.bus.overlapsBar(addr, len)) {
    throw new L0Error('MEMORY_UNREACHABLE', `${toHex(addr)}+${len} straddles a BAR edge`);
  }
  if (addr + BigInt(len) > 1n << 64n) {
    throw new L0Error('MEMORY_UNREACHABLE', `${toHex(addr)}+${len} wraps 2^64`);
  }
  // Check every page first, so a refused op has no partial effect.
  const spans = pageSpans(addr, len).map((s) => {
    const host = deps.mem.memslots.translate(s.addr, s.len);
    if (!host.ok) {
      throw new L0Error('MEMORY_UNREACHABLE', `${toHex(s.addr)} is neither RAM nor a BAR`);
    }
    return { ...s, host: host.addr };
  });
  if (requester.kind === 'cpu') {
    const first = Number(addr >> BigInt(PAGE_SHIFT));
    const last = Number(machineAddr(addr + BigInt(len - 1)) >> BigInt(PAGE_SHIFT));
    if (!deps.frames.allows(requester.domain, first, last)) {
      throw new L0Error(
        'ACCESS_DENIED',
        `dom${requester.domain} may not touch machine frames 0x${first.toString(16)}..0x${last.toString(16)}`,
      );
    }
  }
  if (payload) {
    for (const s of spans) deps.mem.ram.write(s.host, payload.subarray(s.offset, s.offset + s.len));
    return undefined;
  }
  const out = new Uint8Array(len);
  for (const s of spans) out.set(deps.mem.ram.read(s.host, s.len), s.offset);
  return out;
}
