// One instance per service per stack. Two l0s on the same stack would both
// subscribe to `nestlab.<stack>.l0.>` and handle every message twice, so a
// service asks its own ping subject before it serves anything: an answer
// means another instance already runs there.
import { Ping, type ServiceToken } from '@nestlab/protocol';
import type { Bus } from './bus.js';

/** How long to wait for a running instance's answer (NO_RESPONDERS comes back at once). */
const PRESENCE_TIMEOUT_MS = 1500;

export interface OtherInstance {
  readonly pid: number;
  readonly uptimeMs: number;
}

/** The instance already serving this service on this stack, or null when there is none. */
export async function findRunningInstance(
  bus: Bus,
  service: ServiceToken,
): Promise<OtherInstance | null> {
  try {
    const { head } = await bus.request(
      Ping[service],
      { from: 'presence' },
      { timeoutMs: PRESENCE_TIMEOUT_MS },
    );
    return { pid: head.pid, uptimeMs: head.uptimeMs };
  } catch {
    // No responders, a timeout or a refused publish: nobody answers, so we are alone.
    return null;
  }
}

/** The one line a refused second instance prints before it exits with code 2. */
export function duplicateInstanceLine(
  service: string,
  stack: string,
  other: OtherInstance,
): string {
  return (
    `${service}: another instance already serves stack ${stack} (pid ${other.pid}, up ` +
    `${Math.round(other.uptimeMs / 1000)} s); refusing to start a second one`
  );
}

/** Stops the process (exit 2, one line on stderr) when the service already runs on this stack. */
export async function exitIfAlreadyRunning(
  bus: Bus,
  service: ServiceToken,
  name: string,
  stack: string,
): Promise<void> {
  if (service === 'lab') return; // the lab's seat is shared by the CLI and the console on purpose
  const other = await findRunningInstance(bus, service);
  if (!other) return;
  process.stderr.write(`${duplicateInstanceLine(name, stack, other)}\n`);
  process.exit(2);
}
