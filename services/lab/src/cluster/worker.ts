// `nestlab worker`: K long-lived stacks on this machine, each taking sweep
// items from the cluster's work queue one at a time. An item is marked in
// progress while it runs (so a long one is not handed to another worker),
// its result is stored with create-if-absent under sweep id + seed, and only
// then acknowledged: a worker that dies before the ack loses nothing, the
// item goes to another worker after the ack wait, and a result stored twice
// is refused by the store.
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { JsMsg } from '@nats-io/jetstream';
import { sweepItem, type SweepItem, type SweepResult } from '@nestlab/protocol';
import { runItem } from './run-item.js';
import { hostStack, type HostedStack } from './stack-host.js';
import { openWorkQueue, resultKey, type WorkQueue } from './work-queue.js';

export interface WorkerOptions {
  urls: string;
  stacks: number;
  /** Names this worker in results and its stacks' tokens (`<name>-k<i>`). */
  name?: string;
  /** Where stacks keep data and logs: `<root>/<stack>/`. */
  root: string;
  ackWaitMs?: number;
  progress: (line: string) => void;
}

export interface Worker {
  readonly name: string;
  readonly stacks: readonly string[];
  /** Hands running items back to the queue, stops every stack, leaves NATS. */
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** How long a pull waits for an item before asking again (and noticing a stop). */
const PULL_EXPIRES_MS = 2000;

export function defaultWorkerName(): string {
  return `${hostname()}-${process.pid}`.replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 40);
}

export async function startWorker(opts: WorkerOptions): Promise<Worker> {
  const name = opts.name ?? defaultWorkerName();
  const q = await openWorkQueue({
    urls: opts.urls,
    name: `nestlab-worker@${name}`,
    ...(opts.ackWaitMs ? { ackWaitMs: opts.ackWaitMs } : {}),
  });
  const hosts: HostedStack[] = [];
  try {
    for (let i = 1; i <= opts.stacks; i++) {
      const stack = `${name}-k${i}`;
      hosts.push(await hostStack(stack, join(opts.root, stack), opts.progress));
      opts.progress(`stack ${stack} up`);
    }
  } catch (err) {
    for (const h of hosts) await h.stop();
    await q.close();
    throw err;
  }
  let stopping = false;
  const running = new Set<JsMsg>();
  const loops = hosts.map((h, i) => serve(i));

  async function serve(i: number): Promise<void> {
    while (!stopping) {
      let m: JsMsg | null;
      try {
        m = await q.items.next({ expires: PULL_EXPIRES_MS });
      } catch {
        await sleep(500); // a node went away; the client finds another
        continue;
      }
      if (!m || stopping) {
        m?.nak();
        continue;
      }
      running.add(m);
      try {
        hosts[i] = await handle(q, m, hosts[i]!, name, opts, () => stopping);
      } finally {
        running.delete(m);
      }
    }
  }

  return {
    name,
    stacks: hosts.map((h) => h.stack),
    stop: async () => {
      stopping = true;
      for (const m of running) m.nak(); // another worker takes them now, not after the ack wait
      await q.nc.flush().catch(() => undefined);
      await Promise.race([Promise.all(loops), sleep(PULL_EXPIRES_MS + 1000)]);
      for (const h of hosts) await h.stop().catch(() => undefined);
      await q.close();
    },
  };
}

/** Runs one delivered item; returns the stack to use next (restarted when the item broke it). */
async function handle(
  q: WorkQueue,
  m: JsMsg,
  host: HostedStack,
  worker: string,
  opts: WorkerOptions,
  stopped: () => boolean,
): Promise<HostedStack> {
  let item: SweepItem;
  try {
    item = sweepItem.parse(m.json(), `item on ${m.subject}`);
  } catch (err) {
    opts.progress(`dropping a bad item on ${m.subject}: ${(err as Error).message}`);
    m.term();
    return host;
  }
  const key = resultKey(item.sweep, item.seed);
  const tag = `${item.id} seed ${item.seed} on ${host.stack}`;
  if (await q.results.get(key).catch(() => null)) {
    opts.progress(`${tag}: already reported; dropping a redelivery`);
    m.ack();
    return host;
  }
  const deliveries = m.info.deliveryCount;
  opts.progress(`${tag}: running (delivery ${deliveries})`);
  const beat = setInterval(() => m.working(), Math.max(500, Math.floor(q.ackWaitMs / 4)));
  const started = Date.now();
  let result: SweepResult;
  let broken = false;
  try {
    const out = await runItem(item, host, () => undefined);
    result = base(item, worker, host.stack, deliveries, started, out.pass, out.verdict);
  } catch (err) {
    const e = err as Error & { code?: string };
    broken = true;
    result = {
      ...base(item, worker, host.stack, deliveries, started, false, 'error'),
      error: { code: e.code ?? e.name, message: e.message.slice(0, 2000) },
    };
  }
  try {
    if (stopped()) return host; // handed back by stop(); another worker reruns it
    const stored = await storeOnce(q, key, result, stopped);
    opts.progress(
      `${tag}: ${result.pass ? 'PASS' : 'FAIL'} ${result.verdict}${stored ? '' : ' (a result was already stored; this one is dropped)'}`,
    );
    m.ack();
  } finally {
    clearInterval(beat);
  }
  if (broken || !host.healthy()) {
    opts.progress(`${host.stack}: restarting the stack after ${broken ? 'an error' : 'a crash'}`);
    await host.stop().catch(() => undefined);
    return hostStack(host.stack, join(opts.root, host.stack), opts.progress);
  }
  return host;
}

function base(
  item: SweepItem,
  worker: string,
  stack: string,
  deliveries: number,
  started: number,
  pass: boolean,
  verdict: string,
): SweepResult {
  return {
    sweep: item.sweep,
    seed: item.seed,
    pass,
    verdict: verdict.slice(0, 500),
    worker,
    stack,
    deliveries,
    elapsedMs: Date.now() - started,
  };
}

/** Stores the result unless one is there; retries through a node failover. False when one was. */
async function storeOnce(
  q: WorkQueue,
  key: string,
  result: SweepResult,
  stopped: () => boolean,
): Promise<boolean> {
  const payload = JSON.stringify(result);
  for (;;) {
    try {
      await q.results.create(key, payload);
      return true;
    } catch (err) {
      // create refuses an existing key; anything else is the cluster moving a leader.
      // Ours, when an earlier attempt was stored but its answer was lost in a failover.
      const there = await q.results.get(key).catch(() => null);
      if (there) return there.string() === payload;
      if (stopped()) throw err;
      await sleep(500);
    }
  }
}
