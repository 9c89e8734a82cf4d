// Property test of every message the four services serve, against the real
// processes: after a scenario has given them state, generated and mutated
// payloads (random bytes, lying head lengths, JSON heads of the wrong shape,
// valid heads with hostile edits) that the schema refuses are sent on each
// message's subject. Each request gets a typed input-error reply, each event
// is counted as rejected, no service's /state changes, and every service
// still answers afterwards.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import fc from 'fast-check';
import * as protocol from '@nestlab/protocol';
import {
  Ping,
  RemoteError,
  decodeReply,
  decodeRequest,
  encodeFrame,
  subjectOf,
} from '@nestlab/protocol';
import type { MessageDef } from '@nestlab/protocol';
import type { Bus } from '@nestlab/service-kit';
import { runScenario } from '../run/orchestrator.js';
import { findScenario } from '../scenarios/builtin.js';
import type { Fleet } from './fleet.js';
import { suiteFleet } from '../testing/suite-fleet.js';

const STACK = 'fz';
const runs = Math.max(150, Math.floor(Number(process.env['NESTLAB_FUZZ_RUNS'] ?? 0) / 20));
const PARAMS: Record<string, string> = { port: '4', dev: 'pci-0000-00-04-0' };

const defs = (() => {
  const out = new Map<string, MessageDef>();
  const visit = (v: unknown, depth: number) => {
    const d = v as MessageDef;
    if (typeof d?.verb === 'string' && typeof d.request?.check === 'function') out.set(d.name, d);
    else if (depth < 2 && typeof v === 'object' && v !== null)
      for (const x of Object.values(v)) visit(x, depth + 1);
  };
  for (const v of Object.values(protocol)) visit(v, 0);
  return [...out.values()].filter((d) => d.service !== 'lab');
})();
const byName = new Map(defs.map((d) => [d.name, d]));

const payloadArb = fc.oneof(
  fc.uint8Array({ maxLength: 64 }),
  fc.jsonValue({ maxDepth: 3 }).map((head) => encodeFrame(head)),
  fc.tuple(fc.jsonValue({ maxDepth: 2 }), fc.nat()).map(([head, n]) => {
    const f = encodeFrame(head);
    if (f.length >= 4) new DataView(f.buffer).setUint32(0, n, true);
    return f;
  }),
  fc
    .record({
      from: fc.oneof(fc.string(), fc.integer(), fc.constant(null)),
      extra: fc.option(fc.jsonValue()),
    })
    .map((h) => encodeFrame(h)),
);

describe(`messages to the real services (fast-check, ${defs.length} messages)`, () => {
  const suite = suiteFleet(STACK, { auth: true, logLevel: 'error' });
  let fleet: Fleet;
  let bus: Bus;
  const states = async () =>
    Promise.all(
      fleet.services.map(async (s) => [
        s.service.name,
        await (await fetch(`${s.adminUrl}/state`)).json(),
      ]),
    );

  before(async () => {
    bus = suite.bus();
    fleet = suite.fleet();
    const s = findScenario('viommu-access-platform');
    assert.ok(s);
    assert.equal((await runScenario(bus, s, { seed: 2, ios: 16, iodepth: 4 })).pass, true);
  });
  it(`refuses every malformed payload with a typed error, changing no state (${runs} cases)`, async () => {
    const before = await states();
    let events = 0;
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...byName.keys()), payloadArb, async (name, bytes) => {
        const def = byName.get(name)!;
        let valid = true;
        try {
          decodeRequest(def, bytes);
        } catch {
          valid = false;
        }
        fc.pre(!valid); // only what the schema refuses: a valid message may change state
        const subject = subjectOf(def, STACK, PARAMS);
        if (def.reply === null) {
          bus.nc.publish(subject, bytes);
          events++;
          return;
        }
        const reply = await bus.nc.request(subject, bytes, { timeout: 5000 });
        assert.throws(
          () => decodeReply(def, subject, reply.data),
          (e: unknown) =>
            e instanceof RemoteError &&
            ['BAD_FRAME', 'BAD_JSON', 'SCHEMA_INVALID'].includes(e.code) &&
            e.kind === 'input',
        );
      }),
      { numRuns: runs, includeErrorInReport: true },
    );
    await bus.nc.flush();
    for (const token of ['l0', 'xen', 'dom0', 'iommu'] as const) {
      const pong = await bus.request(Ping[token], { from: 'fuzz' });
      assert.equal(pong.head.ready, true, token);
    }
    assert.deepEqual(await states(), before, 'no service state changed');
    let rejected = 0;
    for (const s of fleet.services) {
      const text = await (await fetch(`${s.adminUrl}/metrics`)).text();
      for (const m of text.matchAll(/^nestlab_bus_messages_rejected_total\{[^}]*\} (\d+)$/gm))
        rejected += Number(m[1]);
    }
    assert.ok(
      rejected >= runs,
      `${rejected} rejections counted for ${runs} malformed messages (${events} events)`,
    );
  });
});
