// The embedded fleet with a NATS user per service: the real service
// processes sign in with their own credentials, run real scenarios with only
// their stack's permissions, and each one is refused when it publishes or
// subscribes outside them; nobody gets in without a password.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { before, describe, it } from 'node:test';
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/nats-core';
import type { NatsCredential } from '@nestlab/nats-runner';
import type { Bus } from '@nestlab/service-kit';
import { runScenario } from '../run/orchestrator.js';
import { findScenario } from '../scenarios/builtin.js';
import type { Fleet } from './fleet.js';
import { suiteFleet } from '../testing/suite-fleet.js';

const STACK = 'iso';
const WAIT_MS = 500;

/** Subjects each seat must be refused, and one it may publish (so a refusal means something). */
const OUTSIDE: Record<string, { publish: string; allowed: string; subscribe: string }> = {
  l0: {
    publish: `nestlab.${STACK}.dom0.job.run`,
    allowed: `nestlab.${STACK}.xen.irq.msi`,
    subscribe: `nestlab.${STACK}.xen.>`,
  },
  xen: {
    publish: `nestlab.${STACK}.l0.pci.config`,
    allowed: `nestlab.${STACK}.dom0.evtchn.9.notify`,
    subscribe: `nestlab.${STACK}.dom0.>`,
  },
  dom0: {
    publish: `nestlab.${STACK}.iommu.pt.map`,
    allowed: `nestlab.${STACK}.xen.p2m.get`,
    subscribe: `nestlab.${STACK}.l0.>`,
  },
  iommu: {
    publish: `nestlab.${STACK}.l0.stack.configure`,
    allowed: `nestlab.${STACK}.iommu.iotlb.invalidate`,
    subscribe: `nestlab.${STACK}.xen.>`,
  },
  lab: {
    publish: 'nestlab.other.l0.stack.configure',
    allowed: `nestlab.${STACK}.l0.svc.ping`,
    subscribe: 'nestlab.other.>',
  },
};

async function refusals(
  url: string,
  c: NatsCredential,
  o: (typeof OUTSIDE)[string],
): Promise<string[]> {
  const nc: NatsConnection = await connect({
    servers: url,
    user: c.user,
    pass: c.pass,
    reconnect: false,
  });

  const errors: string[] = [];
  void (async () => {
    for await (const s of nc.status())
      if (s.type === 'error') errors.push(String(s.error?.message));
  })();
  const sub = nc.subscribe(o.subscribe);
  const subRefused = sub.closed.then(
    (e) => (e ? String(e.message) : ''),
    (e: unknown) => String(e),
  );
  nc.publish(o.publish, new Uint8Array(0));
  nc.publish(o.allowed, new Uint8Array(0));
  await nc.flush();
  const why = await Promise.race([subRefused, sleep(WAIT_MS).then(() => '')]);
  await nc.close();
  const refused = (s: string) => errors.some((e) => /permission/i.test(e) && e.includes(`"${s}"`));
  return [
    ...(refused(o.publish) ? [`publish ${o.publish}`] : []),
    ...(refused(o.allowed) ? [`publish ${o.allowed}`] : []),
    ...(/permission/i.test(why) ? [`subscribe ${o.subscribe}`] : []),
  ];
}

describe('embedded fleet with a NATS user per service', () => {
  const suite = suiteFleet(STACK, { auth: true });
  let fleet: Fleet;
  let bus: Bus;

  before(() => {
    bus = suite.bus();
    fleet = suite.fleet();
  });
  it('nobody gets in without the password', async () => {
    assert.ok(fleet.auth && fleet.labAuth);
    await assert.rejects(connect({ servers: fleet.natsUrl, reconnect: false }), /authoriz/i);
    const l0 = fleet.auth.credentials.l0;
    await assert.rejects(
      connect({
        servers: fleet.natsUrl,
        user: l0.user,
        pass: fleet.auth.credentials.xen.pass,
        reconnect: false,
      }),
      /authoriz/i,
    );
  });

  it('the services run whole scenarios on their own users (IOMMU, Xen, interrupts)', async () => {
    for (const id of ['xen-pv-dom0-dma-api', 'viommu-access-platform']) {
      const s = findScenario(id);
      assert.ok(s, id);
      const r = await runScenario(bus, s, { seed: 5, ios: 40, iodepth: 8 });
      assert.equal(
        r.pass,
        true,
        `${id}: ${JSON.stringify({ outcome: r.outcome, ios: r.ios, errors: r.errors })}`,
      );
      assert.equal(r.ios.verified, 40, id);
    }
  });

  for (const role of ['l0', 'xen', 'dom0', 'iommu', 'lab'] as const) {
    it(`${role} is refused outside its permissions`, async () => {
      assert.ok(fleet.auth);
      const o = OUTSIDE[role];
      assert.ok(o);
      assert.deepEqual(await refusals(fleet.natsUrl, fleet.auth.credentials[role], o), [
        `publish ${o.publish}`,
        `subscribe ${o.subscribe}`,
      ]);
    });
  }
});
