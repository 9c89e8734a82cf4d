// Every metric each real service exports on /metrics, checked against the
// naming rules (docs/ARCHITECTURE.md, Metrics): one prefix scheme, base units,
// `_total` on counters only, no gauge sharing a counter's stem, a `stack`
// label on every nestlab series; and prom-client's process/runtime defaults.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  metricTypes,
  parseMetrics,
  startNatsServer,
  type NatsServerHandle,
} from '@nestlab/testing';
import { startFleet, type Fleet } from '../fleet/fleet.js';

const STACK = 'names';
const SCHEME = /^nestlab_(l0|xen|dom0|iommu|lab|bus)_[a-z0-9]+(_[a-z0-9]+)*$/;
/** Units that are not base units (seconds, bytes). */
const NON_BASE_UNIT =
  /_(us|ms|ns|micros|millis|microseconds|milliseconds|minutes|kib|mib|gib|kb|mb|gb)(_|$)/;

describe('metric names of every real service', () => {
  let nats: NatsServerHandle;
  let fleet: Fleet;

  before(async () => {
    nats = await startNatsServer();
    fleet = await startFleet({
      natsUrl: nats.url,
      stack: STACK,
      adminBasePort: 0,
      logDir: mkdtempSync(join(tmpdir(), 'nestlab-names-')),
    });
  });
  after(async () => {
    await fleet?.stop();
    await nats?.stop();
  });

  it('follow the naming rules, carry the stack label and include the prom-client defaults', async (t) => {
    assert.equal(fleet.services.length, 4);
    for (const s of fleet.services) {
      const text = await (await fetch(`${s.adminUrl}/metrics`)).text();
      const types = metricTypes(text);
      const nestlab = [...types.keys()].filter((n) => n.startsWith('nestlab_'));
      t.diagnostic(`${s.service.name}: ${[...types.keys()].sort().join(' ')}`);
      assert.ok(nestlab.length > 0, `${s.service.name} exports nestlab metrics`);
      for (const name of ['process_cpu_seconds_total', 'nodejs_heap_size_used_bytes'])
        assert.ok(types.has(name), `${s.service.name} exports ${name}`);

      for (const name of nestlab) {
        const type = types.get(name);
        const where = `${s.service.name} ${name} (${type})`;
        assert.match(name, SCHEME, where);
        assert.doesNotMatch(name, NON_BASE_UNIT, `${where}: base units only`);
        if (type === 'counter') assert.match(name, /_total$/, `${where}: a counter ends in _total`);
        else assert.doesNotMatch(name, /_total$/, `${where}: only counters end in _total`);
        if (type === 'gauge')
          assert.ok(!types.has(`${name}_total`), `${where}: a counter shares its stem`);
      }
      const samples = parseMetrics(text);
      assert.ok(samples.length > 0);
      for (const m of samples)
        assert.equal(m.labels['stack'], STACK, `${s.service.name} ${m.name}: stack label`);
    }
  });
});
