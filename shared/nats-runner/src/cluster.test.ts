import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { authorizationConfig, generateStackAuth, permissionsFor, type StackAuth } from './auth.js';
import { generateWorkSeat, startNatsCluster, type NatsClusterHandle } from './cluster.js';
import { publishDenied, seat, subscribeDenied, type Probe } from './permission-probe.js';

describe('a three-node cluster shared by two stacks', () => {
  let cluster: NatsClusterHandle;
  let s1: StackAuth;
  let s2: StackAuth;
  const work = generateWorkSeat();
  const probes: Probe[] = [];
  const on = async (node: number, c: { user: string; pass: string }, inbox?: string) => {
    const p = await seat(cluster.nodes[node]!.url, c, inbox);
    probes.push(p);
    return p;
  };

  before(async () => {
    s1 = generateStackAuth('s1');
    s2 = generateStackAuth('s2');
    cluster = await startNatsCluster({ nodes: 3, config: authorizationConfig([s1, s2], [work]) });
  });
  after(async () => {
    for (const p of probes) await p.nc.close().catch(() => undefined);
    await cluster?.stop();
  });

  it('routes a stack’s own request/reply between nodes', async () => {
    const l0 = await on(2, s2.credentials.l0);
    const served = l0.nc.subscribe('nestlab.s2.l0.mem.access', {
      callback: (_e, m) => void m.respond(new TextEncoder().encode('mem')),
    });
    await l0.nc.flush();
    const dom0 = await on(0, s2.credentials.dom0, '_INBOX.s2.dom0');
    let reply = '';
    // Interest crosses the routes shortly after the subscription.
    for (let i = 0; i < 50 && !reply; i++) {
      reply = await dom0.nc
        .request('nestlab.s2.l0.mem.access', new Uint8Array(0), { timeout: 500 })
        .then((m) => m.string())
        .catch(() => '');
    }
    assert.equal(reply, 'mem');
    served.unsubscribe();
  });

  it("denies stack s1's credentials on stack s2's subjects, on every node", async () => {
    for (let node = 0; node < 3; node++) {
      for (const role of ['lab', 'l0', 'dom0'] as const) {
        const p = await on(node, s1.credentials[role]);
        const theirs = permissionsFor(role, 's2');
        const pubs = theirs.publish.map((s) => s.replace(/\*/g, '7').replace(/>$/, 'x'));
        assert.deepEqual(
          await publishDenied(p, pubs),
          pubs,
          `${role}@s1 publishing in s2 (node ${node + 1})`,
        );
        assert.deepEqual(await subscribeDenied(p, theirs.subscribe), theirs.subscribe);
      }
    }
  });

  it('keeps stack seats off the work queue and the work seat off every stack', async () => {
    const lab = await on(1, s1.credentials.lab);
    const jsApi = ['$JS.API.STREAM.LIST', 'nestlab-sweep.items.x.1'];
    assert.deepEqual(await publishDenied(lab, jsApi), jsApi);
    const w = await on(1, work, '_INBOX_WORK');
    const stackSubjects = ['nestlab.s1.l0.mem.access', 'nestlab.s2.dom0.job.run'];
    assert.deepEqual(await publishDenied(w, stackSubjects), stackSubjects);
    assert.deepEqual(await subscribeDenied(w, ['nestlab.s1.>', '_INBOX.s1.lab.>']), [
      'nestlab.s1.>',
      '_INBOX.s1.lab.>',
    ]);
    assert.deepEqual(await publishDenied(w, ['nestlab-sweep.items.x.1']), []);
  });
});
