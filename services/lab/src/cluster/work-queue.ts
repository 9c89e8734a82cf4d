// The sweep's JetStream resources on the cluster: a work-queue stream with
// one item per seed (each taken by one worker, redelivered when its worker
// dies before acknowledging it) and a KV bucket of results keyed by sweep id
// and seed, written with create-if-absent so a redelivered item's second
// result is refused, never counted twice. Replicated over three nodes when
// the cluster has them, so a node may die mid-sweep.
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/nats-core';
import {
  AckPolicy,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  jetstream,
  jetstreamManager,
  type Consumer,
  type JetStreamClient,
  type JetStreamManager,
} from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { WORK_INBOX_PREFIX } from '@nestlab/nats-runner';

export const ITEMS_STREAM = 'NESTLAB_SWEEP_ITEMS';
export const ITEMS_PREFIX = 'nestlab-sweep.items';
export const WORKERS_CONSUMER = 'workers';
export const RESULTS_BUCKET = 'nestlab-sweep-results';
/** An item not acknowledged (nor marked in progress) for this long goes to another worker. */
export const DEFAULT_ACK_WAIT_MS = 20_000;

export const itemSubject = (sweep: string, seed: number) => `${ITEMS_PREFIX}.${sweep}.${seed}`;
export const resultKey = (sweep: string, seed: number) => `${sweep}.${seed}`;

const nanos = (ms: number) => ms * 1_000_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface WorkQueue {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly results: KV;
  readonly items: Consumer;
  readonly ackWaitMs: number;
  close(): Promise<void>;
}

export class WorkQueueError extends Error {
  override readonly name = 'WorkQueueError';
  constructor(
    readonly code: 'NATS_UNREACHABLE' | 'JETSTREAM_UNAVAILABLE',
    message: string,
  ) {
    super(message);
  }
}

export interface WorkQueueOptions {
  /** Comma-separated NATS URLs (any node of the cluster). */
  urls: string;
  name: string;
  /** Used only when this call creates the consumer. */
  ackWaitMs?: number;
  /** How long to wait for the cluster to elect a JetStream leader. */
  readyTimeoutMs?: number;
}

/** Connects the work seat (NESTLAB_WORK_USER / NESTLAB_WORK_PASS when set) and opens or creates the resources. */
export async function openWorkQueue(opts: WorkQueueOptions): Promise<WorkQueue> {
  const user = process.env['NESTLAB_WORK_USER'];
  const pass = process.env['NESTLAB_WORK_PASS'];
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: opts.urls.split(','),
      name: opts.name,
      inboxPrefix: WORK_INBOX_PREFIX,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      ...(user && pass ? { user, pass } : {}),
    });
  } catch (err) {
    throw new WorkQueueError(
      'NATS_UNREACHABLE',
      `cannot reach NATS at ${opts.urls}: ${(err as Error).message}`,
    );
  }
  try {
    const deadline = Date.now() + (opts.readyTimeoutMs ?? 30_000);
    for (;;) {
      try {
        return await ensure(nc, opts.ackWaitMs ?? DEFAULT_ACK_WAIT_MS);
      } catch (err) {
        // A fresh cluster answers 503 until it has elected a meta leader.
        if (Date.now() > deadline)
          throw new WorkQueueError(
            'JETSTREAM_UNAVAILABLE',
            `JetStream on ${opts.urls} is not available: ${(err as Error).message}`,
          );
        await sleep(250);
      }
    }
  } catch (err) {
    await nc.close().catch(() => undefined);
    throw err;
  }
}

async function ensure(nc: NatsConnection, ackWaitMs: number): Promise<WorkQueue> {
  const jsm = await jetstreamManager(nc, { timeout: 10_000 });
  const js = jetstream(nc, { timeout: 10_000 });
  const replicas = await withReplicas(async (r) => {
    await jsm.streams.info(ITEMS_STREAM).catch(async (err: unknown) => {
      if (!(err instanceof JetStreamApiError) || err.status !== 404) throw err;
      await jsm.streams.add({
        name: ITEMS_STREAM,
        subjects: [`${ITEMS_PREFIX}.>`],
        retention: RetentionPolicy.Workqueue,
        storage: StorageType.File,
        num_replicas: r,
        // A restarted sweep republishing an item still queued is dropped by its msgID.
        duplicate_window: nanos(60 * 60_000),
      });
    });
    const info = await jsm.streams.info(ITEMS_STREAM);
    return info.config.num_replicas;
  });
  const consumerInfo = await jsm.consumers.info(ITEMS_STREAM, WORKERS_CONSUMER).catch(() =>
    jsm.consumers.add(ITEMS_STREAM, {
      durable_name: WORKERS_CONSUMER,
      ack_policy: AckPolicy.Explicit,
      ack_wait: nanos(ackWaitMs),
      max_deliver: -1,
      max_ack_pending: 10_000,
    }),
  );
  // History above 1 keeps every write of a key visible: a seed stored twice would show.
  const results = await new Kvm(js).create(RESULTS_BUCKET, { replicas, history: 5 });
  const items = await js.consumers.get(ITEMS_STREAM, WORKERS_CONSUMER);
  return {
    nc,
    js,
    jsm,
    results,
    items,
    ackWaitMs: Math.round((consumerInfo.config.ack_wait ?? nanos(ackWaitMs)) / 1_000_000),
    close: async () => {
      await nc.drain().catch(() => undefined);
    },
  };
}

/** Three replicas where the cluster has three nodes; a single server takes one. */
async function withReplicas(create: (replicas: number) => Promise<number>): Promise<number> {
  try {
    return await create(3);
  } catch (err) {
    // Only the refusal of replicas falls back; anything else (no leader yet) is retried by the caller.
    if (!(err instanceof JetStreamApiError) || !/replica|cluster/i.test(err.message)) throw err;
    return create(1);
  }
}
