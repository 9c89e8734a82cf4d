// Test helpers: connect as a seat and find out which publishes and
// subscriptions the server refuses (auth and cluster tests). Not exported.
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/nats-core';
import type { NatsCredential } from './auth.js';

/** How long the server gets to report a permissions violation. */
const VIOLATION_WAIT_MS = 400;

export interface Probe {
  nc: NatsConnection;
  errors: string[];
}

export async function seat(url: string, c: NatsCredential, inboxPrefix?: string): Promise<Probe> {
  const nc = await connect({
    servers: url,
    user: c.user,
    pass: c.pass,
    reconnect: false,
    ...(inboxPrefix ? { inboxPrefix } : {}),
  });
  const errors: string[] = [];
  void (async () => {
    for await (const s of nc.status())
      if (s.type === 'error') errors.push(String(s.error?.message));
  })();
  return { nc, errors };
}

/** The subjects whose publish the server refused (an async "Permissions Violation" each). */
export async function publishDenied(p: Probe, subjects: readonly string[]): Promise<string[]> {
  const before = p.errors.length;
  for (const s of subjects) p.nc.publish(s, new Uint8Array(0));
  await p.nc.flush();
  await sleep(VIOLATION_WAIT_MS);
  const seen = p.errors.slice(before).filter((e) => /permission/i.test(e));
  return subjects.filter((s) => seen.some((e) => e.includes(`"${s}"`)));
}

/** The subjects whose subscription the server refused. */
export async function subscribeDenied(p: Probe, subjects: readonly string[]): Promise<string[]> {
  const results = subjects.map((subject) => {
    const sub = p.nc.subscribe(subject);
    return sub.closed.then(
      (e) => ({ subject, sub, why: e ? String(e.message) : '' }),
      (e: unknown) => ({ subject, sub, why: String((e as Error)?.message ?? e) }),
    );
  });
  await p.nc.flush();
  const settled = await Promise.race([
    Promise.all(results),
    sleep(VIOLATION_WAIT_MS).then(() => null),
  ]);
  const done =
    settled ?? (await Promise.all(results.map((r) => Promise.race([r, Promise.resolve(null)]))));
  return done.flatMap((r) => (r !== null && /permission/i.test(r.why) ? [r.subject] : []));
}
