// Test helper: kill a spawned service the hard way (SIGKILL, as the lab's
// crash-restart experiments do).
import type { NatsConnection } from '@nats-io/nats-core';
import { Ping, type ServiceToken } from '@nestlab/protocol';
import { call } from './nats-call.js';
import type { SpawnedService } from './spawn-service.js';

/** SIGKILLs the service found by its Ping pid and waits until the process is gone. */
export async function sigkill(
  nc: NatsConnection,
  stack: string,
  token: Exclude<ServiceToken, 'lab'>,
  svc: SpawnedService,
): Promise<void> {
  const { pid } = await call(nc, stack, Ping[token], { from: 'test' });
  process.kill(pid, 'SIGKILL');
  const how = await svc.stop();
  if (how !== 'SIGKILL') throw new Error(`expected death by SIGKILL, got ${String(how)}`);
}

/** Whether a process with this pid exists (signal 0 checks without sending anything). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
