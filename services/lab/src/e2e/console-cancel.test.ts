// A console run on a real fleet can be cancelled: the run ends soon after
// with a `cancelled` report of what did run, and the next run is accepted.
// A run another lab (a CLI) holds the fleet for refuses the console's, and the
// other way round.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { RunOwner } from '@nestlab/protocol';
import type { Bus } from '@nestlab/service-kit';
import { waitFor } from '@nestlab/testing';
import { buildConsole } from '../console/app.js';
import { holdFleet } from '../fleet/fleet-lease.js';
import { labSeat } from '../fleet/lab-seat.js';
import { suiteFleet } from '../testing/suite-fleet.js';

/** Waits for the console to report a run, failing after 30 s instead of hanging. */
const untilRunning = (app: ReturnType<typeof buildConsole>) =>
  waitFor(
    'the console to report the run as running',
    async () => ((await app.inject('/api/live')).json().running ? true : undefined),
    30_000,
    100,
  );

/** Waits until some lab answers as the fleet's holder (the console takes it after it reports running). */
const untilHeld = (bus: Bus) =>
  waitFor(
    'the console run to take the fleet',
    () =>
      bus.request(RunOwner, { from: 'test' }, { timeoutMs: 500 }).then(
        () => true,
        () => undefined,
      ),
    30_000,
  );

describe('cancelling a console run', () => {
  const suite = suiteFleet('cx');
  let bus: Bus;

  before(() => {
    bus = suite.bus();
  });
  it('stops a 10,000,000-I/O run, reports it cancelled, and frees the console for the next', async () => {
    const app = buildConsole({ bus });
    const run = (ios: number) =>
      app.inject({
        method: 'POST',
        url: '/api/scenarios/kvm-guest-baseline/run',
        payload: { ios, seed: 3 },
      });
    const big = run(10_000_000);
    // Once the run is under way (and well into its job), refuse a second one and cancel the first.
    await untilRunning(app);
    await new Promise((r) => setTimeout(r, 5000));
    assert.equal((await run(10)).statusCode, 409);
    const cancel = await app.inject({ method: 'POST', url: '/api/run/cancel' });
    assert.equal(cancel.statusCode, 200);
    assert.deepEqual(cancel.json(), { cancelled: 'kvm-guest-baseline' });
    const res = await big;
    assert.equal(res.statusCode, 200);
    const report = res.json();
    assert.equal(report.cancelled, true);
    assert.equal(report.pass, false);
    assert.ok(report.ios.submitted > 0 && report.ios.submitted < 10_000_000);
    assert.equal(report.ios.completed + report.ios.failed, report.ios.submitted);
    const next = await run(20);
    assert.equal(next.statusCode, 200);
    assert.equal(next.json().pass, true);
    assert.equal(next.json().cancelled, undefined);
  });

  it('refuses a console run while a CLI run holds the fleet, and a CLI run while the console runs', async () => {
    const app = buildConsole({ bus });
    const cli = await labSeat(suite.fleet().natsUrl, 'cx', suite.fleet().labAuth);
    try {
      const held = await holdFleet(cli.bus, 'run xen-pv-dom0-legacy');
      const refused = await app.inject({
        method: 'POST',
        url: '/api/scenarios/kvm-guest-baseline/run',
        payload: { ios: 10 },
      });
      assert.equal(refused.statusCode, 409);
      assert.equal(refused.json().code, 'RUN_IN_PROGRESS');
      assert.match(refused.json().message, /holds it for run xen-pv-dom0-legacy/);
      held.release();

      const big = app.inject({
        method: 'POST',
        url: '/api/scenarios/kvm-guest-baseline/run',
        payload: { ios: 10_000_000 },
      });
      await untilRunning(app);
      await untilHeld(cli.bus);
      await assert.rejects(holdFleet(cli.bus, 'run viommu-access-platform'), (err: Error) => {
        assert.match(err.message, /the fleet is busy: pid \d+ holds it for run kvm-guest-baseline/);
        return true;
      });
      // Cancelled at once, while the run may still be configuring the layers: it runs no job.
      const cancel = await app.inject({ method: 'POST', url: '/api/run/cancel' });
      assert.equal(cancel.statusCode, 200);
      const report = (await big).json();
      assert.equal(report.cancelled, true);
      assert.ok(report.ios.submitted < 10_000_000);
      (await holdFleet(cli.bus, 'run after')).release();
    } finally {
      await cli.close();
    }
  });
});
