import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildConsole } from './app.js';
import { TraceStore } from './trace-store.js';

const TRACE = '0af7651916cd43dd8448eb211c80319c';
const otlp = (
  spans: {
    spanId: string;
    parent?: string;
    name: string;
    service: string;
    attrs?: Record<string, string>;
  }[],
) => ({
  resourceSpans: spans.map((s) => ({
    resource: { attributes: [{ key: 'service.name', value: { stringValue: s.service } }] },
    scopeSpans: [
      {
        spans: [
          {
            traceId: TRACE,
            spanId: s.spanId,
            ...(s.parent ? { parentSpanId: s.parent } : {}),
            name: s.name,
            kind: 1,
            startTimeUnixNano: '1700000000000000000',
            endTimeUnixNano: '1700000000000500000',
            attributes: Object.entries(s.attrs ?? {}).map(([key, v]) => ({
              key,
              value: { stringValue: v },
            })),
          },
        ],
      },
    ],
  })),
});

describe('console OTLP receiver and trace API', () => {
  it('stores spans from OTLP/JSON and serves them by trace id', async () => {
    const app = buildConsole();
    const res = await app.inject({
      method: 'POST',
      url: '/v1/traces',
      payload: otlp([
        { spanId: 'b7ad6b7169203331', name: 'dom0.io', service: 'dom0-kernel' },
        {
          spanId: 'c7ad6b7169203331',
          parent: 'b7ad6b7169203331',
          name: 'dma',
          service: 'l0-hypervisor',
          attrs: { 'nestlab.dma.verdict': 'direct', 'nestlab.addr.machine': '0x70100000' },
        },
      ]),
    });
    assert.equal(res.statusCode, 200);
    const got = await app.inject(`/api/traces/${TRACE.toUpperCase()}`);
    assert.equal(got.statusCode, 200);
    const spans = got.json().spans as {
      service: string;
      attributes: Record<string, string>;
      startUs: number;
      endUs: number;
    }[];
    assert.deepEqual(spans.map((s) => s.service).sort(), ['dom0-kernel', 'l0-hypervisor']);
    assert.equal(
      spans.find((s) => s.service === 'l0-hypervisor')?.attributes['nestlab.addr.machine'],
      '0x70100000',
    );
    assert.equal((spans[0]?.endUs ?? 0) - (spans[0]?.startUs ?? 0), 500);
    const live = (await app.inject('/api/live')).json();
    assert.deepEqual(live.verdicts, { direct: 1 });
  });

  it('refuses protobuf, malformed bodies and unknown traces with typed errors', async () => {
    const app = buildConsole();
    const proto = await app.inject({
      method: 'POST',
      url: '/v1/traces',
      headers: { 'content-type': 'application/x-protobuf' },
      payload: Buffer.from([1, 2]),
    });
    assert.equal(proto.statusCode, 415);
    assert.equal(proto.json().code, 'OTLP_PROTOBUF');
    const bad = await app.inject({
      method: 'POST',
      url: '/v1/traces',
      payload: { resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: 'zz', spanId: '1' }] }] }] },
    });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().code, 'OTLP_INVALID');
    const none = await app.inject(`/api/traces/${'1'.repeat(32)}`);
    assert.equal(none.statusCode, 404);
    assert.equal(none.json().code, 'TRACE_NOT_FOUND');
    const run = await app.inject({ method: 'POST', url: '/api/scenarios/xen-pv-dom0-legacy/run' });
    assert.equal(run.statusCode, 503);
  });

  it('lists traces per stack with ?stack= and the stacks it has seen', async () => {
    const app = buildConsole();
    // Two processes of two stacks, as the SDK sends them (the stack is a resource attribute),
    // and one span that names its stack itself.
    const fromStack = (stack: string, traceId: string, spanAttrs: Record<string, string> = {}) => ({
      resourceSpans: [
        {
          resource: {
            attributes: [
              { key: 'service.name', value: { stringValue: 'dom0-kernel' } },
              { key: 'nestlab.stack', value: { stringValue: stack } },
            ],
          },
          scopeSpans: [
            {
              spans: [
                {
                  traceId,
                  spanId: 'b7ad6b7169203331',
                  name: 'dom0.io',
                  startTimeUnixNano: '1700000000000000000',
                  endTimeUnixNano: '1700000000000500000',
                  attributes: Object.entries(spanAttrs).map(([key, v]) => ({
                    key,
                    value: { stringValue: v },
                  })),
                },
              ],
            },
          ],
        },
      ],
    });
    const a = 'a'.repeat(32);
    const b = 'b'.repeat(32);
    const c = 'c'.repeat(32);
    for (const body of [
      fromStack('s0', a),
      fromStack('s1', b),
      fromStack('s0', c, { 'nestlab.stack': 's1' }),
    ])
      assert.equal(
        (await app.inject({ method: 'POST', url: '/v1/traces', payload: body })).statusCode,
        200,
      );
    const all = (await app.inject('/api/traces')).json();
    assert.deepEqual(all.stacks, ['s0', 's1']);
    assert.deepEqual(
      all.traces.map((t: { traceId: string; stacks: string[] }) => [t.traceId, t.stacks]),
      [
        [c, ['s1']],
        [b, ['s1']],
        [a, ['s0']],
      ],
    );
    const ids = async (url: string) =>
      (await app.inject(url)).json().traces.map((t: { traceId: string }) => t.traceId);
    assert.deepEqual(await ids('/api/traces?stack=s1'), [c, b]);
    assert.deepEqual(await ids('/api/traces?stack=s0'), [a]);
    assert.deepEqual(await ids('/api/traces?stack=s1&limit=1'), [c]);
    assert.deepEqual(await ids('/api/traces?stack=nope'), []);
    for (const bad of [
      '/api/traces?stack=',
      `/api/traces?stack=${'x'.repeat(129)}`,
      '/api/traces?limit=-1',
    ]) {
      const res = await app.inject(bad);
      assert.equal(res.statusCode, 400, bad);
      assert.equal(res.json().code, 'INVALID_REQUEST');
    }
  });

  it('keeps a bounded number of traces and spans', () => {
    const store = new TraceStore(3, 2);
    const span = (traceId: string, spanId: string) => ({
      traceId,
      spanId,
      parentSpanId: null,
      service: 's',
      name: 'n',
      kind: 0,
      startUs: 0,
      endUs: 1,
      attributes: {},
      status: { code: 0 },
      links: [],
    });
    for (let t = 0; t < 5; t++) for (let s = 0; s < 4; s++) store.add(span(`t${t}`, `s${s}`));
    assert.deepEqual(store.stats(), { traces: 3, spans: 6, dropped: 10 });
    assert.equal(store.get('t0'), undefined);
    assert.equal(store.get('t4')?.length, 2);
  });

  it('serves the pages without external assets', async () => {
    const app = buildConsole();
    for (const url of ['/', '/faults', `/trace/${TRACE}`]) {
      const page = await app.inject(url);
      assert.equal(page.statusCode, 200);
      assert.match(page.headers['content-type'] as string, /text\/html/);
      assert.doesNotMatch(page.body, /https?:\/\//);
      assert.doesNotMatch(page.body, /<script>/, `${url} has an inline script`);
    }
  });

  it('serves each page script and what it imports from /assets as JavaScript, and 404s the rest', async () => {
    const app = buildConsole();
    const seen = new Set<string>();
    const pending: string[] = [];
    for (const url of ['/', '/faults', `/trace/${TRACE}`]) {
      const srcs = [
        ...(await app.inject(url)).body.matchAll(/<script type="module" src="([^"]+)">/g),
      ];
      assert.equal(srcs.length, 1, `${url} loads one script module`);
      pending.push(srcs[0]?.[1] ?? '');
    }
    while (pending.length) {
      const url = pending.pop() ?? '';
      if (seen.has(url)) continue;
      seen.add(url);
      const res = await app.inject(url);
      assert.equal(res.statusCode, 200, url);
      assert.match(res.headers['content-type'] as string, /^(text|application)\/javascript/);
      for (const m of res.body.matchAll(/from '\.\/([a-z-]+\.js)'/g))
        pending.push(`/assets/${m[1]}`);
    }
    assert.deepEqual([...seen].sort(), [
      '/assets/dom.js',
      '/assets/faults.js',
      '/assets/real-guest.js',
      '/assets/scenarios.js',
      '/assets/trace.js',
    ]);
    for (const url of [
      '/assets/nope.js',
      '/assets/app.js',
      '/assets/..%2Fapp.js',
      '/assets/tsconfig.json',
    ]) {
      const res = await app.inject(url);
      assert.equal(res.statusCode, 404, url);
      assert.equal(res.json().code, 'ASSET_NOT_FOUND');
    }
  });

  it('hands the trace page its id and the attribute keys in data- attributes', async () => {
    const page = (await buildConsole().inject(`/trace/${TRACE}"><b>`)).body;
    const section = /<section id="trace" data-trace-id="([^"]*)" data-attr-keys="([^"]*)">/.exec(
      page,
    );
    assert.equal(section?.[1], TRACE + 'b', 'only hex digits of the id reach the page');
    const keys = JSON.parse((section?.[2] ?? '').replace(/&#34;/g, '"')) as Record<string, string>;
    assert.equal(keys.addrMachine, 'nestlab.addr.machine');
  });
});
