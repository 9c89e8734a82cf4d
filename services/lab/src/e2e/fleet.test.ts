import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/nats-core';
import {
  Ping,
  RemoteError,
  decodeReply,
  encodeFrame,
  encodeRequest,
  subjectOf,
} from '@nestlab/protocol';
import { parseMetrics, startNatsServer, type NatsServerHandle } from '@nestlab/testing';
import { startFleet, type Fleet } from '../fleet/fleet.js';
import { fleetServices } from '../fleet/services.js';

describe('the fleet: real nats-server and four service processes', () => {
  let nats: NatsServerHandle;
  let fleet: Fleet;
  let nc: NatsConnection;

  before(async () => {
    nats = await startNatsServer();
    fleet = await startFleet({
      natsUrl: nats.url,
      stack: 'e2e',
      adminBasePort: 0,
      logDir: mkdtempSync(join(tmpdir(), 'nestlab-fleet-')),
    });
    nc = await connect({ servers: nats.url });
  });
  after(async () => {
    await nc?.close();
    await fleet?.stop();
    await nats?.stop();
  });

  it('reports every service ready on /readyz', async () => {
    assert.equal(fleet.services.length, 4);
    for (const s of fleet.services) {
      const res = await fetch(`${s.adminUrl}/readyz`);
      assert.equal(res.status, 200, s.service.name);
      assert.deepEqual(await res.json(), {
        service: s.service.name,
        pid: s.process.pid,
        ready: true,
        nats: true,
        started: true,
      });
      const metrics = await (await fetch(`${s.adminUrl}/metrics`)).text();
      assert.match(metrics, /# TYPE nestlab_bus_messages_received_total counter/);
    }
  });

  it('answers a ping over NATS from each service', async () => {
    for (const s of fleetServices()) {
      const def = Ping[s.token];
      const subject = subjectOf(def, 'e2e');
      const reply = await nc.request(subject, encodeRequest(def, { from: 'e2e' }), {
        timeout: 3000,
      });
      const body = decodeReply(def, subject, reply.data).head;
      assert.equal(body.service, s.token);
      assert.equal(body.stack, 'e2e');
      assert.equal(body.ready, true);
    }
  });

  it('answers malformed messages with typed errors and keeps serving', async () => {
    for (const s of fleetServices()) {
      const def = Ping[s.token];
      const subject = subjectOf(def, 'e2e');
      const cases: [Uint8Array, string][] = [
        [new Uint8Array([0xde, 0xad]), 'BAD_FRAME'],
        [encodeFrame({ from: 42 }), 'SCHEMA_INVALID'],
        [new TextEncoder().encode('\x05\x00\x00\x00{nope'), 'BAD_JSON'],
      ];
      for (const [bytes, code] of cases) {
        const reply = await nc.request(subject, bytes, { timeout: 3000 });
        assert.throws(
          () => decodeReply(def, subject, reply.data),
          (err: RemoteError) =>
            err instanceof RemoteError && err.code === code && err.kind === 'input',
          `${s.name} ${code}`,
        );
      }
      const metrics = await (
        await fetch(`${fleet.services.find((p) => p.service.token === s.token)?.adminUrl}/metrics`)
      ).text();
      const rejected = parseMetrics(metrics).filter(
        (m) =>
          m.name === 'nestlab_bus_messages_rejected_total' &&
          m.labels['code'] === 'SCHEMA_INVALID' &&
          /^[a-z0-9]+\.svc\.ping$/.test(m.labels['kind'] ?? ''),
      );
      assert.deepEqual(
        rejected.map((m) => m.value),
        [1],
      );
    }
    const again = await nc.request(
      subjectOf(Ping.l0, 'e2e'),
      encodeRequest(Ping.l0, { from: 'e2e' }),
      { timeout: 3000 },
    );
    assert.equal(decodeReply(Ping.l0, 'x', again.data).head.ready, true);
  });

  it('exits 0 on SIGTERM, every service', async () => {
    const exits = await fleet.stop();
    assert.deepEqual(exits, { 'dom0-kernel': 0, xen: 0, 'l0-hypervisor': 0, iommu: 0 });
  });
});

describe('service configuration', () => {
  it('stops with one line naming a bad variable', () => {
    const [svc] = fleetServices();
    assert.ok(svc);
    for (const [name, value] of [
      ['NATS_URL', 'not a url'],
      ['NESTLAB_STACK', 'a.b'],
      ['ADMIN_PORT', '99999'],
      ['LOG_LEVEL', 'loud'],
    ] as const) {
      const run: SpawnSyncReturns<string> = spawnSync(process.execPath, [svc.entry], {
        env: { ...process.env, [name]: value },
        encoding: 'utf8',
        timeout: 10_000,
      });
      assert.equal(run.status, 2, `${name}: ${run.stderr}`);
      const lines = run.stderr.trim().split('\n');
      assert.equal(lines.length, 1, run.stderr);
      assert.match(lines[0] ?? '', new RegExp(`${svc.name}: invalid configuration: ${name}: `));
    }
  });
});
