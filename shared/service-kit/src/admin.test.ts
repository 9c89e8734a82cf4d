import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildAdminApp } from './admin.js';
import { loadConfig, type ConfigError } from './config.js';
import { MetricsRegistry } from './metrics.js';

describe('admin app', () => {
  const metrics = new MetricsRegistry();
  metrics.counter('nestlab_test_total', 'a test counter', ['kind']).inc({ kind: 'a"b' }, 2);
  metrics.histogram('nestlab_latency_seconds', 'latency', [0.01, 0.1]).observe(0.05);
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
    assert.deepEqual(res.json(), {
      service: 'svc',
      pid: process.pid,
      ready: true,
      nats: true,
      started: true,
    });
  });

  it('renders Prometheus text with escaped labels and cumulative buckets', async () => {
    const text = (await app.inject('/metrics')).body;
    assert.match(text, /^nestlab_test_total\{kind="a\\"b"\} 2$/m);
    assert.match(text, /^nestlab_latency_seconds_bucket\{le="0.01"\} 0$/m);
    assert.match(text, /^nestlab_latency_seconds_bucket\{le="0.1"\} 1$/m);
    assert.match(text, /^nestlab_latency_seconds_count 1$/m);
  });

  it('answers unknown routes and wrong methods with a typed 404', async () => {
    const res = await app.inject({ method: 'DELETE', url: '/healthz' });
    assert.equal(res.statusCode, 404);
    assert.equal(res.json().code, 'NOT_FOUND');
  });
});

describe('admin app: bad input at the edge', () => {
  // A service's runtime-configuration route, as services add them through `routes`.
  let configured: unknown = null;
  const app = buildAdminApp({
    service: 'svc',
    metrics: new MetricsRegistry(),
    readiness: () => ({ ready: true, nats: true, started: true }),
    state: () => {
      throw Object.assign(new Error('state exploded'), { code: 'STATE_BROKEN' });
    },
    routes: (a) => {
      a.post('/config', async (req) => {
        configured = req.body;
        return { ok: true };
      });
      a.get('/boom', async () => {
        throw new Error('handler bug');
      });
    },
  });

  it('refuses a body over 1 MiB with 413 and a code, and keeps the old configuration', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/config',
      headers: { 'content-type': 'application/json' },
      payload: `{"pad":"${'x'.repeat((1 << 20) + 16)}"}`,
    });
    assert.equal(res.statusCode, 413);
    assert.equal(res.json().code, 'FST_ERR_CTP_BODY_TOO_LARGE');
    assert.equal(configured, null);
  });

  it('refuses malformed JSON (400) and an unsupported content type (415), with codes', async () => {
    const bad = await app.inject({
      method: 'POST',
      url: '/config',
      headers: { 'content-type': 'application/json' },
      payload: '{"a":',
    });
    assert.equal(bad.statusCode, 400);
    assert.match(bad.json().code, /^FST_ERR_CTP_/);
    const xml = await app.inject({
      method: 'POST',
      url: '/config',
      headers: { 'content-type': 'application/xml' },
      payload: '<a/>',
    });
    assert.equal(xml.statusCode, 415);
    assert.equal(xml.json().code, 'FST_ERR_CTP_INVALID_MEDIA_TYPE');
    assert.equal(configured, null);
  });

  it('answers every wrong method and unknown path with a typed 404', async () => {
    const cases: [string, string][] = [
      ['POST', '/healthz'],
      ['PUT', '/state'],
      ['DELETE', '/metrics'],
      ['PATCH', '/readyz'],
      ['GET', '/config'],
      ['GET', '/nope'],
      ['GET', '/../state/..%2f..%2fetc%2fpasswd'],
      ['GET', `/${'a'.repeat(8000)}`],
    ];
    for (const [method, url] of cases) {
      const res = await app.inject({ method: method as 'GET', url });
      assert.equal(res.statusCode, 404, `${method} ${url.slice(0, 40)}`);
      assert.equal(res.json().code, 'NOT_FOUND');
      assert.ok(res.json().message.length <= 9000);
    }
    const badUrl = await app.inject('/%ff%fe');
    assert.equal(badUrl.statusCode, 400);
    assert.equal(badUrl.json().code, 'FST_ERR_BAD_URL');
  });

  it('turns a throwing handler or state source into a 500 with a code; the app keeps serving', async () => {
    const boom = await app.inject('/boom');
    assert.equal(boom.statusCode, 500);
    assert.deepEqual(boom.json(), { code: 'INTERNAL', message: 'handler bug' });
    const state = await app.inject('/state');
    assert.equal(state.statusCode, 500);
    assert.equal(state.json().code, 'STATE_BROKEN');
    assert.equal((await app.inject('/healthz')).statusCode, 200);
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

describe('admin app under pressure', () => {
  const build = (pressure: Parameters<typeof buildAdminApp>[0]['pressure']) =>
    buildAdminApp({
      service: 'svc',
      metrics: new MetricsRegistry(),
      readiness: () => ({ ready: true, nats: true, started: true }),
      state: () => ({ ok: true }),
      pressure,
    });
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  /** Asks `url` until it answers `status` (timers run late on a loaded machine). */
  async function until(app: ReturnType<typeof build>, url: string, status: number) {
    for (let i = 0; i < 300; i++) {
      const res = await app.inject(url);
      if (res.statusCode === status) return res;
      await sleep(20);
    }
    throw new Error(`${url} never answered ${status}`);
  }

  it('answers 503 UNDER_PRESSURE after a stalled event loop, keeps /healthz, recovers', async () => {
    const app = build({ maxEventLoopDelayMs: 100, sampleIntervalMs: 100 });
    try {
      assert.equal((await app.inject('/state')).statusCode, 200);
      await sleep(100); // the lag monitor needs a tick or two before it can see a stall
      // The guard compares the mean lag of a window with the limit: the one long
      // sample of the stall must outweigh the ~10 short ones before it.
      const stallUntil = Date.now() + 1500;
      while (Date.now() < stallUntil); // a stalled loop, as under a flood of synchronous work
      const res = await until(app, '/state', 503);
      assert.equal(res.json().code, 'UNDER_PRESSURE');
      assert.match(res.json().message, /event loop lag/);
      assert.ok(res.headers['retry-after']);
      assert.equal((await app.inject('/healthz')).statusCode, 200);
      await until(app, '/state', 200); // calm samples clear the condition
    } finally {
      await app.close();
    }
  });

  it('answers 503 when the heap is over its limit', async () => {
    // Lag check off: a 50 ms window on a loaded machine may hold no lag sample at all.
    const app = build({ maxHeapUsedBytes: 1, maxEventLoopDelayMs: 0, sampleIntervalMs: 50 });
    try {
      const res = await until(app, '/metrics', 503);
      assert.match(res.json().message, /heap/);
    } finally {
      await app.close();
    }
  });
});
