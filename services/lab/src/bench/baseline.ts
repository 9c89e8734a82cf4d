// The physical limit of a message-per-hop design on this machine: what raw
// NATS request/reply does between two processes on the same nats-server, in
// the same run as the stack (machines are shared and noisy; only ratios
// measured side by side mean something).
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/nats-core';
import { watchedChild } from '@nestlab/service-kit';
import { cpuPerIo, medianEach, sampleCpu, sumOf, type CpuSeat } from './cpu.js';
import { median, type Baseline } from './report.js';

export interface BaselineOptions {
  natsUrl: string;
  /** Requests in flight for the 4 KiB figure (the deepest iodepth of the bench). */
  concurrency: number;
  /** Requests per repetition of the 4 KiB figure; sequential round trips measured. */
  requests: number;
  roundTrips: number;
  reps?: number;
  /** The nats-server's pid, so its CPU counts in the cost of a round trip. */
  natsPid?: number | undefined;
  progress?: (line: string) => void;
}

const SUBJECT = 'nestlab.bench.echo';
const RESPONDER = fileURLToPath(new URL('./echo-responder.js', import.meta.url));

export async function measureBaseline(o: BaselineOptions): Promise<Baseline> {
  const child = await startResponder(o.natsUrl);
  // No async stack traces: the figure is what NATS can do, not what error objects cost.
  const nc = await connect({ servers: o.natsUrl.split(','), noAsyncTraces: true });
  try {
    const small = new Uint8Array(64);
    const page = new Uint8Array(4096).fill(0xa5);
    await concurrent(nc, page, o.concurrency, Math.min(o.requests, 500)); // warm-up
    // Requester (this process), echo and nats-server: every process a round trip costs.
    const seats: CpuSeat[] = [
      { name: 'requester', pid: process.pid },
      { name: 'echo', pid: child.pid },
      { name: 'nats-server', pid: o.natsPid },
    ];
    for (let i = 0; i < 100; i++) await nc.request(SUBJECT, small, { timeout: 5000 }); // warm-up
    const rtts: number[] = [];
    const sequentialFrom = sampleCpu(seats);
    for (let i = 0; i < o.roundTrips; i++) {
      const t = process.hrtime.bigint();
      await nc.request(SUBJECT, small, { timeout: 5000 });
      rtts.push(Number(process.hrtime.bigint() - t) / 1000);
    }
    const sequential = cpuPerIo(sequentialFrom, sampleCpu(seats), o.roundTrips);
    const rates: number[] = [];
    const cpu: Record<string, number>[] = [];
    for (let r = 0; r < (o.reps ?? 3); r++) {
      const before = sampleCpu(seats);
      rates.push(await concurrent(nc, page, o.concurrency, o.requests));
      cpu.push(cpuPerIo(before, sampleCpu(seats), o.requests));
    }
    const byProcess = medianEach(cpu);
    const cpuUsPerRoundTrip = byProcess ? sumOf(byProcess) : null;
    const cpuUsPerSequentialRoundTrip =
      Object.keys(sequential).length > 0 ? sumOf(sequential) : null;
    o.progress?.(
      `baseline: 4 KiB req/rep at ${o.concurrency} in flight ${rates.map(Math.round).join(', ')}/s; ` +
        `RTT p50 ${Math.round(median(rtts))}us; CPU per round trip ${cpuUsPerRoundTrip ?? '-'}us, ` +
        `per sequential round trip ${cpuUsPerSequentialRoundTrip ?? '-'}us`,
    );
    return {
      reqRep4kPerSec: Math.round(median(rates)),
      rttP50Us: Math.round(median(rtts)),
      reqRep4kConcurrency: o.concurrency,
      cpuUsPerRoundTrip,
      cpuUsPerRoundTripByProcess: byProcess,
      cpuUsPerSequentialRoundTrip,
    };
  } finally {
    await nc.close();
    await stop(child);
  }
}

/** `n` requests of `payload`, `depth` in flight; returns requests per second. */
async function concurrent(
  nc: NatsConnection,
  payload: Uint8Array,
  depth: number,
  n: number,
): Promise<number> {
  let issued = 0;
  const started = process.hrtime.bigint();
  const lane = async () => {
    while (issued < n) {
      issued++;
      const reply = await nc.request(SUBJECT, payload, { timeout: 10_000 });
      if (reply.data.byteLength !== payload.byteLength) throw new Error('echo changed the payload');
    }
  };
  await Promise.all(Array.from({ length: depth }, lane));
  const s = Number(process.hrtime.bigint() - started) / 1e9;
  return n / s;
}

function startResponder(natsUrl: string): Promise<ChildProcess> {
  const watch = watchedChild(process.env);
  const child = spawn(process.execPath, [RESPONDER, natsUrl, SUBJECT], {
    env: watch.env,
    stdio: [watch.stdin, 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr?.on('data', (c: Buffer) => (err = (err + c.toString()).slice(-2000)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the echo responder was not ready within 20 s: ${err}`));
    }, 20_000);
    child.stdout?.once('data', () => {
      clearTimeout(timer);
      resolve(child);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the echo responder exited (${code}): ${err}`));
    });
  });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(timer);
}
