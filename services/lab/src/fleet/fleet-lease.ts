// One run at a time on a fleet. `nestlab up`'s fleet is shared by every CLI
// command and the console; a second run configuring it mid-job would turn the
// first one's I/Os into timeouts and mix both runs' DMA logs. So a lab holds
// the fleet while it runs (it answers RunOwner on the stack), and asks before
// it starts: an answer means the fleet is busy, and the second run is refused
// naming the first. A lab that dies drops its NATS subscription, and the fleet
// is free again. Two runs starting within the same few milliseconds can both
// see it free; that race is accepted (README, "What runs").
import { errorFamily, RunOwner, sharedClockMs } from '@nestlab/protocol';
import type { Bus } from '@nestlab/service-kit';

export const FleetLeaseError = errorFamily('FleetLeaseError', {
  /** Another lab runs a job on this fleet now. */
  FLEET_BUSY: 'transient',
});
export type FleetLeaseError = InstanceType<typeof FleetLeaseError>;

/** How long to wait for the holder's answer (NO_RESPONDERS comes back at once). */
const ASK_TIMEOUT_MS = 1500;

interface Held {
  count: number;
  stop(): void;
}

/** Per bus: this process may hold the fleet for a matrix and, inside it, for each run. */
const held = new WeakMap<Bus, Held>();

export interface FleetLease {
  release(): void;
}

/**
 * Takes the fleet behind `bus` for `what` (e.g. "run xen-pv-dom0-dma-api"),
 * or throws FLEET_BUSY naming the lab that holds it. Re-entrant per bus.
 */
export async function holdFleet(bus: Bus, what: string): Promise<FleetLease> {
  const mine = held.get(bus);
  if (mine) {
    mine.count++;
    return leaseOf(bus, mine);
  }
  const holder = await bus
    .request(RunOwner, { from: `pid ${process.pid}` }, { timeoutMs: ASK_TIMEOUT_MS })
    .then(
      (r) => r.head,
      // No responders or no answer in time: nobody holds it.
      () => null,
    );
  if (holder) {
    const ago = Math.max(0, Math.round((sharedClockMs() - holder.sinceMs) / 1000));
    throw new FleetLeaseError(
      'FLEET_BUSY',
      `the fleet is busy: pid ${holder.pid} holds it for ${holder.what} (${ago} s so far); ` +
        'wait for it to end, or run on a private fleet with --private',
    );
  }
  const sinceMs = sharedClockMs();
  const sub = bus.handle(RunOwner, () => ({ body: { pid: process.pid, what, sinceMs } }));
  // Held only once the server has our subscription: a lab asking after we return must find us.
  await bus.flush().catch((err: unknown) => {
    sub.stop();
    throw err;
  });
  const entry: Held = { count: 1, stop: () => sub.stop() };
  held.set(bus, entry);
  return leaseOf(bus, entry);
}

function leaseOf(bus: Bus, entry: Held): FleetLease {
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      if (--entry.count > 0) return;
      entry.stop();
      held.delete(bus);
    },
  };
}

/** Runs `work` holding the fleet; releases it however `work` ends. */
export async function withFleetHeld<T>(bus: Bus, what: string, work: () => Promise<T>): Promise<T> {
  const lease = await holdFleet(bus, what);
  try {
    return await work();
  } finally {
    lease.release();
  }
}
