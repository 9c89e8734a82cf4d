// Guest RAM is sparse: a big guest costs only what it touched. The bench
// gives L0 a 4 GiB guest, writes 64 MiB spread over it (as Xen, whose CPU
// may touch any frame) and reads the l0-hypervisor process's resident size.
import { readFileSync } from 'node:fs';
import { toHex, machineAddr } from '@nestlab/addr';
import { L0Configure, MemAccess } from '@nestlab/protocol';
import type { Bus } from '@nestlab/service-kit';
import type { BenchMemory } from './report.js';

export interface MemoryOptions {
  guestBytes: number;
  touchBytes: number;
  /** The l0-hypervisor process and its admin server (for what L0 says it backs). */
  l0Pid: number | undefined;
  l0AdminUrl: string;
}

/** Runs of this many bytes, evenly spread; several per message (NATS payloads stay < 1 MiB). */
const RUN_BYTES = 64 * 1024;
const RUNS_PER_MESSAGE = 8;
/** Where RAM above 3 GiB lives in machine space (L0's memslots, like QEMU's pc machine). */
const HOLE_START = 3 * 2 ** 30;
const HOLE_BYTES = 2 ** 30;

export async function measureMemory(bus: Bus, o: MemoryOptions): Promise<BenchMemory> {
  await bus.request(L0Configure, { ramBytes: o.guestBytes, devices: [] }, { timeoutMs: 30_000 });
  const runs = Math.floor(o.touchBytes / RUN_BYTES);
  const stride = Math.floor(o.guestBytes / runs / 4096) * 4096;
  const payload = new Uint8Array(RUN_BYTES * RUNS_PER_MESSAGE);
  for (let i = 0; i < payload.length; i += 4096) payload[i] = (i >> 12) | 1;
  for (let first = 0; first < runs; first += RUNS_PER_MESSAGE) {
    const n = Math.min(RUNS_PER_MESSAGE, runs - first);
    const ops = Array.from({ length: n }, (_, k) => {
      const host = (first + k) * stride;
      const machine = host < HOLE_START ? host : host + HOLE_BYTES;
      return { op: 'write' as const, addr: toHex(machineAddr(BigInt(machine))), len: RUN_BYTES };
    });
    await bus.request(
      MemAccess,
      { requester: { kind: 'xen' }, ops },
      { data: payload.subarray(0, n * RUN_BYTES), timeoutMs: 30_000 },
    );
  }
  const state = (await (await fetch(`${o.l0AdminUrl}/state`)).json()) as {
    memory?: { touchedBytes?: number; ramBytes?: number };
  };
  return {
    guestBytes: state.memory?.ramBytes ?? o.guestBytes,
    touchedBytes: state.memory?.touchedBytes ?? 0,
    l0RssBytes: o.l0Pid === undefined ? null : rssOf(o.l0Pid),
  };
}

/** VmRSS of a process, from Linux's /proc; null elsewhere. */
export function rssOf(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}
