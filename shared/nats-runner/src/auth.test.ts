import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { connect } from '@nats-io/transport-node';
import {
  NATS_ROLES,
  ROLE_PERMISSIONS,
  authorizationConfig,
  generateStackAuth,
  permissionsFor,
  type NatsRole,
  type StackAuth,
} from './auth.js';
import { startNatsServer, type NatsServerHandle } from './nats-server.js';
import { publishDenied, seat, subscribeDenied, type Probe } from './permission-probe.js';

const composeConf = new URL('../../../deploy/nats/nats.conf', import.meta.url);
/** The permission blocks of deploy/nats/nats.conf, `*` for the stack written as `S`. */
function composeMatrix(): Record<string, { publish: string[]; subscribe: string[] }> {
  const text = readFileSync(composeConf, 'utf8');
  const out: Record<string, { publish: string[]; subscribe: string[] }> = {};
  for (const m of text.matchAll(/^ {2}([A-Z0-9]+) = \{([\s\S]*?)^ {2}\}/gm)) {
    const field = (name: string) =>
      [
        ...(new RegExp(`${name}: \\[([^\\]]*)\\]`).exec(m[2] ?? '')?.[1] ?? '').matchAll(
          /"([^"]+)"/g,
        ),
      ]
        // compose's lab drives every stack (`nestlab.>`); a stack's lab seat drives its own.
        .map((x) =>
          (x[1] ?? '')
            .replace(/^nestlab\.(\*\.|>$)/, (_m, g: string) =>
              g === '>' ? 'nestlab.S.>' : 'nestlab.S.',
            )
            .replace(/^_INBOX\.\*\.(?=.)/, '_INBOX.S.'),
        )
        .sort();
    out[(m[1] ?? '').toLowerCase()] = { publish: field('publish'), subscribe: field('subscribe') };
  }
  return out;
}

describe('per-stack NATS permissions', () => {
  it('match deploy/nats/nats.conf role by role (compose allows any stack, here one)', () => {
    const compose = composeMatrix();
    assert.deepEqual(Object.keys(compose).sort(), [...NATS_ROLES].sort());
    for (const role of NATS_ROLES) {
      const mine = ROLE_PERMISSIONS[role];
      assert.deepEqual(
        { publish: [...mine.publish].sort(), subscribe: [...mine.subscribe].sort() },
        compose[role],
        role,
      );
    }
    assert.deepEqual(permissionsFor('l0', 's7').publish, [
      'nestlab.s7.iommu.pt.translate',
      'nestlab.s7.xen.irq.msi',
      'nestlab.s7.l0.svc.ping',
      '_INBOX.s7.>',
    ]);
    assert.throws(() => permissionsFor('l0', 'a.b'), RangeError);
    assert.throws(() => generateStackAuth('>'), RangeError);
  });

  it('give each seat its own inbox prefix', () => {
    for (const role of NATS_ROLES) {
      const inboxes = permissionsFor(role, 's7').subscribe.filter((s) => s.startsWith('_INBOX'));
      assert.deepEqual(inboxes, [`_INBOX.s7.${role}.>`], role);
    }
  });

  describe('on a real nats-server with two stacks', () => {
    let server: NatsServerHandle;
    let a: StackAuth;
    let b: StackAuth;
    const probes: Probe[] = [];
    const as = async (auth: StackAuth, role: NatsRole) => {
      const p = await seat(server.url, auth.credentials[role]);
      probes.push(p);
      return p;
    };

    before(async () => {
      a = generateStackAuth('a');
      b = generateStackAuth('b');
      server = await startNatsServer({ config: authorizationConfig([a, b]) });
    });
    after(async () => {
      for (const p of probes) await p.nc.close().catch(() => undefined);
      await server?.stop();
    });

    it('refuses no credentials, a wrong password and one stack user with another stack password', async () => {
      await assert.rejects(connect({ servers: server.url, reconnect: false }), /authoriz/i);
      const l0 = a.credentials.l0;
      await assert.rejects(
        connect({ servers: server.url, user: l0.user, pass: `${l0.pass}x`, reconnect: false }),
        /authoriz/i,
      );
      await assert.rejects(
        connect({
          servers: server.url,
          user: l0.user,
          pass: b.credentials.l0.pass,
          reconnect: false,
        }),
        /authoriz/i,
      );
    });

    // For each role: one subject it must be refused, one it is allowed (so a refusal means something).
    const cases: Record<NatsRole, { denied: string; allowed: string; deniedSub: string }> = {
      lab: {
        denied: 'nestlab.b.l0.mem.access',
        allowed: 'nestlab.a.l0.mem.access',
        deniedSub: 'nestlab.b.>',
      },
      l0: {
        denied: 'nestlab.a.dom0.job.run',
        allowed: 'nestlab.a.xen.irq.msi',
        deniedSub: 'nestlab.a.xen.>',
      },
      xen: {
        denied: 'nestlab.a.l0.pci.config',
        allowed: 'nestlab.a.dom0.evtchn.7.notify',
        deniedSub: 'nestlab.a.l0.>',
      },
      dom0: {
        denied: 'nestlab.a.iommu.pt.map',
        allowed: 'nestlab.a.l0.mem.access',
        deniedSub: 'nestlab.a.xen.>',
      },
      iommu: {
        denied: 'nestlab.a.xen.irq.msi',
        allowed: 'nestlab.a.iommu.iotlb.invalidate',
        deniedSub: 'nestlab.a.l0.>',
      },
    };
    for (const role of NATS_ROLES) {
      it(`${role}: denied outside its permissions, allowed inside`, async () => {
        const p = await as(a, role);
        const c = cases[role];
        assert.deepEqual(await publishDenied(p, [c.denied, c.allowed]), [c.denied]);
        assert.deepEqual(await subscribeDenied(p, [c.deniedSub]), [c.deniedSub]);
      });
    }

    it("no seat can read another seat's replies; its own inbox works for request/reply", async () => {
      const xen = await as(a, 'xen');
      const l0Inbox = '_INBOX.a.l0.>';
      assert.deepEqual(await subscribeDenied(xen, ['_INBOX.>', l0Inbox]), ['_INBOX.>', l0Inbox]);
      // dom0 asks Xen with its own prefix; Xen answers through allow_responses.
      const dom0 = await seat(server.url, a.credentials.dom0, '_INBOX.a.dom0');
      probes.push(dom0);
      const xenSeat = await seat(server.url, a.credentials.xen);
      probes.push(xenSeat);
      const served = xenSeat.nc.subscribe('nestlab.a.xen.p2m.get', {
        callback: (_e, m) => void m.respond(new TextEncoder().encode('ok')),
      });
      await xenSeat.nc.flush();
      const rep = await dom0.nc.request('nestlab.a.xen.p2m.get', new Uint8Array(0), {
        timeout: 2000,
      });
      assert.equal(new TextDecoder().decode(rep.data), 'ok');
      served.unsubscribe();
    });

    it("a stack's services can neither read nor write another stack's subjects", async () => {
      for (const role of NATS_ROLES) {
        const p = await as(a, role);
        const own = permissionsFor(role, 'a');
        const theirs = permissionsFor(role, 'b');
        const pubs = theirs.publish.map((s) => s.replace(/\*/g, '7').replace(/>$/, 'x'));
        assert.deepEqual(await publishDenied(p, pubs), pubs, `${role}@a publishing in stack b`);
        // Their subjects and their replies: every inbox of stack b is closed to stack a.
        const subs = theirs.subscribe;
        assert.deepEqual(await subscribeDenied(p, subs), subs, `${role}@a subscribing in stack b`);
        assert.ok(own.subscribe.every((s) => !s.startsWith('nestlab.b.')));
      }
    });
  });
});
