import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildAdminApp } from './admin.js';
import { loadConfig, type ConfigError } from './config.js';
import { MetricsRegistry } from './metrics.js';

describe('admin app', () => {
  const metrics = new MetricsRegistry();
  metrics.counter('nestlab_test_total', 'a test counter').inc({ kind: 'a"b' }, 2);
  metrics.histogram('nestlab_latency_us', 'latency', [10, 100]).observe(50);
  let ready = false;
  const app = buildAdminApp({
    service: 'svc',
    metrics,
    readiness: () => ({ ready, nats: true, started: ready }),
    state: () => ({ queues: 1 }),
  });

  it('reports 503 until ready, then 200', async () => {
    assert.equal((await app.inject('/readyz')).statusCode, 503);
    ready = true;
    const res = await app.inject('/readyz');
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), { service: 'svc', ready: true, nats: true, started: true });
  });

  it('renders Prometheus text with escaped labels and cumulative buckets', async () => {
    const text = (await app.inject('/metrics')).body;
    assert.match(text, /^nestlab_test_total\{kind="a\\"b"\} 2$/m);
    assert.match(text, /^nestlab_latency_us_bucket\{le="10"\} 0$/m);
    assert.match(text, /^nestlab_latency_us_bucket\{le="100"\} 1$/m);
    assert.match(text, /^nestlab_latency_us_count 1$/m);
  });

  it('answers unknown routes and wrong methods with a typed 404', async () => {
    const res = await app.inject({ method: 'DELETE', url: '/healthz' });
    assert.equal(res.statusCode, 404);
    assert.equal(res.json().code, 'NOT_FOUND');
  });
});

describe('loadConfig', () => {
  it('has defaults and names the bad variable', () => {
    const c = loadConfig('x', 7000, {});
    assert.equal(c.natsUrl, 'nats://127.0.0.1:4222');
    assert.equal(c.stack, 's1');
    assert.equal(c.adminPort, 7000);
    assert.throws(
      () => loadConfig('x', 1, { NATS_URL: 'http://a:1' }),
      (e: ConfigError) => e.variable === 'NATS_URL',
    );
    assert.throws(
      () => loadConfig('x', 1, { ADMIN_PORT: '-1' }),
      (e: ConfigError) => e.variable === 'ADMIN_PORT',
    );
    assert.throws(
      () => loadConfig('x', 1, { NATS_USER: 'u' }),
      (e: ConfigError) => e.variable === 'NATS_PASS',
    );
  });
});
