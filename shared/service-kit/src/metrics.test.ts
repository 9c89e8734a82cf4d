import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MetricsRegistry } from './metrics.js';

describe('metrics registry (prom-client)', () => {
  it('reads a counter synchronously as /metrics renders it, with the stack label', async () => {
    const reg = new MetricsRegistry({ stack: 's9' });
    const c = reg.counter('nestlab_test_things_total', 'things', ['kind', 'code']);
    c.inc({ kind: 'a', code: 'X' }, 2);
    c.inc({ kind: 'a', code: 'Y' });
    c.inc({ kind: 'b', code: 'X' }, 4);
    assert.equal(c.get({ kind: 'a' }), 3);
    assert.equal(reg.value('nestlab_test_things_total', { code: 'X' }), 6);
    assert.equal(reg.value('nestlab_test_things_total'), 7);
    assert.equal(reg.value('nestlab_unknown_total'), 0);
    const text = await reg.render();
    const rendered = [...text.matchAll(/^nestlab_test_things_total\{([^}]*)\} (\d+)$/gm)];
    assert.equal(rendered.length, 3);
    for (const [, labels] of rendered) assert.match(labels ?? '', /stack="s9"/);
    assert.equal(
      rendered.reduce((n, m) => n + Number(m[2]), 0),
      7,
      'the synchronous read and the rendered text agree',
    );
  });

  it('reads function gauges at scrape time and refuses a name reused with another type', async () => {
    const reg = new MetricsRegistry();
    let pages = 1;
    reg.gauge('nestlab_test_present_pages', 'pages').set(() => pages);
    pages = 5;
    assert.match(await reg.render(), /^nestlab_test_present_pages 5$/m);
    assert.equal(
      reg.gauge('nestlab_test_present_pages', 'again'),
      reg.gauge('nestlab_test_present_pages', ''),
    );
    assert.throws(() => reg.counter('nestlab_test_present_pages', 'clash'), /different types/);
  });

  it('refuses a label it was not declared with', () => {
    const reg = new MetricsRegistry();
    const c = reg.counter('nestlab_test_x_total', 'x', ['kind']);
    assert.throws(() => (c as unknown as { inc(l: object): void }).inc({ other: 'y' }), /label/);
  });

  it("exports prom-client's process and runtime metrics when asked", async () => {
    const text = await new MetricsRegistry({ stack: 's1', defaults: true }).render();
    assert.match(text, /^process_cpu_seconds_total\{stack="s1"\} /m);
    assert.match(text, /^nodejs_heap_size_used_bytes\{stack="s1"\} /m);
    assert.doesNotMatch(await new MetricsRegistry().render(), /process_cpu/);
  });
});
