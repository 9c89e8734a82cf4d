import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startNatsServer, type NatsServerHandle } from '@nestlab/testing';
import { FleetLeaseError, holdFleet, withFleetHeld } from './fleet-lease.js';
import { labSeat } from './lab-seat.js';

type Seat = Awaited<ReturnType<typeof labSeat>>;

describe('fleet lease: one run at a time on a shared fleet (real nats-server)', () => {
  let server: NatsServerHandle;
  const seats: Seat[] = [];
  const seat = async (stack = 'fl') => {
    const s = await labSeat(server.url, stack);
    seats.push(s);
    return s;
  };

  before(async () => {
    server = await startNatsServer();
  });
  after(async () => {
    for (const s of seats) await s.close().catch(() => undefined);
    await server.stop();
  });

  it('refuses a second lab while the first holds, naming it; frees on the last release', async () => {
    const [a, b] = [await seat(), await seat()];
    const outer = await holdFleet(a.bus, 'matrix (2 scenarios)');
    const inner = await holdFleet(a.bus, 'run kvm-guest-baseline'); // re-entrant in one process
    await assert.rejects(holdFleet(b.bus, 'run xen-pv-dom0-legacy'), (err: unknown) => {
      assert.ok(FleetLeaseError.is(err, 'FLEET_BUSY'), String(err));
      assert.match(
        err.message,
        new RegExp(`pid ${process.pid} holds it for matrix \\(2 scenarios\\)`),
      );
      assert.match(err.message, /--private/);
      return true;
    });
    inner.release();
    inner.release(); // a second release of the same lease changes nothing
    await assert.rejects(holdFleet(b.bus, 'run x'), /the fleet is busy/);
    outer.release();
    const got = await holdFleet(b.bus, 'run xen-pv-dom0-legacy');
    await assert.rejects(holdFleet(a.bus, 'run y'), /holds it for run xen-pv-dom0-legacy/);
    got.release();
  });

  it('frees the fleet when the holder goes away without releasing (its connection closes)', async () => {
    const [a, b] = [await seat(), await seat()];
    await holdFleet(a.bus, 'run crashed');
    await assert.rejects(holdFleet(b.bus, 'run next'), /holds it for run crashed/);
    await a.close();
    const lease = await holdFleet(b.bus, 'run next');
    lease.release();
  });

  it('releases when the work throws, and stacks do not see each other', async () => {
    const [a, b, other] = [await seat(), await seat(), await seat('fl2')];
    await assert.rejects(
      withFleetHeld(a.bus, 'run failing', async () => {
        const onOtherStack = await holdFleet(other.bus, 'run elsewhere');
        onOtherStack.release();
        throw new Error('the job broke');
      }),
      /the job broke/,
    );
    const lease = await holdFleet(b.bus, 'run after');
    lease.release();
  });
});
