import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { startNatsServer, type NatsServerHandle } from '@nestlab/testing';
import { startLab, type Lab } from '../fleet/lab.js';

/** Where the screenshot lands (CI keeps it as an artifact). */
const ARTIFACTS = join(new URL('../../../../', import.meta.url).pathname, 'artifacts');
const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';

describe('the lab console in a real browser', () => {
  let nats: NatsServerHandle;
  let lab: Lab;
  let browser: Browser;
  const scratch = mkdtempSync(join(tmpdir(), 'nestlab-ui-'));

  before(async () => {
    process.env['NESTLAB_RUNS'] = join(scratch, 'runs');
    nats = await startNatsServer();
    lab = await startLab({
      natsUrl: nats.url,
      stack: 'ui',
      consolePort: 0,
      adminBasePort: 0,
      logDir: join(scratch, 'logs'),
      env: { NESTLAB_DATA_DIR: join(scratch, 'data'), LOG_LEVEL: 'warn' },
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--no-first-run',
      ],
    });
  });
  after(async () => {
    await browser?.close();
    await lab?.stop();
    await nats?.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  it("groups the scenarios by the thread's options: the bug, the proposals, the final fixes", async () => {
    const page = await browser.newPage();
    await page.goto(lab.consoleUrl);
    await page.locator('#scenarios tr[data-id]').first().waitFor();
    type Row = { getAttribute(name: string): string | null; textContent: string | null };
    const rows = await page.locator('#scenarios tbody tr').evaluateAll((trs: Row[]) =>
      trs.map((tr) => ({
        heading: tr.getAttribute('class') === 'group',
        group: tr.getAttribute('data-group') ?? '',
        id: tr.getAttribute('data-id') ?? '',
        text: tr.textContent ?? '',
      })),
    );
    const headings = rows.filter((r) => r.heading);
    assert.deepEqual(
      headings.map((h) => h.group),
      ['the-bug', 'the-proposals', 'the-final-fixes'],
    );
    assert.match(headings[1]?.text ?? '', /proposals/i);
    // Each scenario row sits under the heading of its own group.
    let current = '';
    for (const r of rows) {
      if (r.heading) current = r.group;
      else assert.equal(r.group, current, `${r.id} under ${current}`);
    }
    const groupOf = (id: string) => rows.find((r) => r.id === id)?.group;
    assert.equal(groupOf('xen-pv-dom0-legacy'), 'the-bug');
    assert.equal(groupOf('xen-pv-dom0-half-fix'), 'the-bug');
    assert.equal(groupOf('bit25-physical-card'), 'the-proposals');
    assert.equal(groupOf('xen-pv-dom0-mmio-legacy'), 'the-proposals');
    assert.equal(groupOf('viommu-access-platform'), 'the-final-fixes');
    await page.close();
  });

  it('runs the legacy scenario from the page and shows the address ladder of a misdirected access', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1100 } });
    await page.goto(lab.consoleUrl);
    const row = page.locator('tr[data-id="xen-pv-dom0-legacy"]');
    await row.locator('button.run').click();
    await assert.doesNotReject(
      row.locator('td.observed', { hasText: 'misdirected-dma' }).waitFor({ timeout: 120_000 }),
    );
    assert.equal(await row.locator('td.pass').count(), 1);

    const report = (await (await fetch(`${lab.consoleUrl}/api/scenarios`)).json()) as {
      scenarios: {
        id: string;
        lastRun: {
          firstMisdirected: { owner: string; bus: string; machine: string; traceId: string | null };
        } | null;
      }[];
    };
    const last = report.scenarios.find((s) => s.id === 'xen-pv-dom0-legacy')?.lastRun;
    assert.ok(last?.firstMisdirected);
    // The row links the trace that holds the first misdirected access.
    const link = await row.locator('a.trace-link').getAttribute('href');
    assert.equal(link, `/trace/${last.firstMisdirected.traceId}`);

    await row.locator('a.trace-link').click();
    // Each service exports its spans in its own batches: reload until the
    // oracle's verdict and every service's spans are in the trace.
    const wanted = ['dom0-kernel', 'l0-hypervisor', 'xen', 'iommu', 'lab'];
    const servicesShown = () =>
      page
        .locator('.wf-row')
        .evaluateAll((rows) => [
          ...new Set(
            rows.map(
              (r) => (r as unknown as { dataset: Record<string, string> }).dataset['service'],
            ),
          ),
        ]);
    for (let i = 0; i < 60; i++) {
      const shown = await servicesShown();
      if (
        (await page.locator('.ladder .owner').count()) > 0 &&
        wanted.every((s) => shown.includes(s))
      )
        break;
      await page.waitForTimeout(500);
      await page.reload();
    }
    // The oracle's ladder: the access as judged, with the owner of the frame it hit.
    const ladder = page.locator('.ladder:has(.owner)').first();
    const addr = (layer: string) => ladder.locator(`.addr[data-layer="${layer}"]`).textContent();
    for (const layer of ['pseudo_phys', 'bus', 'machine', 'host_phys']) {
      assert.match((await addr(layer)) ?? '', /^0x[0-9a-f]+$/, layer);
    }
    const owner = await ladder.locator('.owner').textContent();
    assert.ok(owner && owner !== 'dom0', `owner ${owner}`);
    // The legacy driver's bus address is its pseudo-physical address: the 2014 bug, on screen.
    assert.equal(await addr('bus'), await addr('pseudo_phys'));
    assert.equal((await page.locator('.wf-row').count()) > 0, true);
    const services = await servicesShown();
    // The legacy I/O itself only crosses dom0 and L0 (no IOMMU, no completion
    // interrupt); Xen's frame table and the IOMMU appear through the oracle,
    // which asks both about the access inside the I/O's trace.
    for (const s of wanted) {
      assert.ok(services.includes(s), `${s} in ${services.join(',')}`);
    }

    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'console-ladder.png'), fullPage: true });
  });

  it('keeps one trace per I/O that crosses all four services when the IOMMU is in the path', async () => {
    const res = await fetch(`${lab.consoleUrl}/api/scenarios/viommu-access-platform/run`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ios: 20 }),
    });
    const report = (await res.json()) as { pass: boolean; traceIds: string[] };
    assert.equal(report.pass, true, JSON.stringify(report));
    const traceId = report.traceIds[0];
    assert.ok(traceId);
    let spans: { service: string; attributes: Record<string, unknown> }[] = [];
    for (let i = 0; i < 40; i++) {
      const got = await fetch(`${lab.consoleUrl}/api/traces/${traceId}`);
      if (got.ok) spans = ((await got.json()) as { spans: typeof spans }).spans;
      if (new Set(spans.map((s) => s.service)).size >= 4) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    const services = new Set(spans.map((s) => s.service));
    for (const s of ['dom0-kernel', 'xen', 'l0-hypervisor', 'iommu'])
      assert.ok(services.has(s), `${s} in ${[...services].join(',')}`);
    const keys = new Set(spans.flatMap((s) => Object.keys(s.attributes)));
    for (const k of [
      'nestlab.addr.pseudo_phys',
      'nestlab.addr.bus',
      'nestlab.addr.machine',
      'nestlab.addr.host_phys',
    ]) {
      assert.ok(keys.has(k), k);
    }
  });

  it('sets a transport rule from the faults panel, shows what it injected, and clears it', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${lab.consoleUrl}/faults`);
    const form = page.locator('#add-rule');
    await form.locator('input[name=id]').fill('dup-msi');
    await form.locator('input[name=subject]').fill('nestlab.ui.xen.irq.msi');
    await form.locator('select[name=action]').selectOption('duplicate');
    await form.locator('button.add').click();
    await page.locator('#rules tr[data-rule="dup-msi"]').waitFor({ timeout: 10_000 });

    // Every MSI reaches Xen twice; completions are idempotent, so the run still passes.
    const res = await fetch(`${lab.consoleUrl}/api/scenarios/xen-pv-dom0-dma-api/run`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ios: 8 }),
    });
    const report = (await res.json()) as { pass: boolean };
    assert.equal(report.pass, true, JSON.stringify(report));
    const xenInjected = page.locator('#services tr[data-service="xen"] td').nth(1);
    let shown = 0;
    for (let i = 0; i < 20 && shown === 0; i++) {
      await page.waitForTimeout(500);
      shown = Number(await xenInjected.textContent());
    }
    assert.ok(shown > 0, `xen injected ${shown}`);
    assert.equal(
      await page.locator('#services tr[data-service="l0"] td').nth(1).textContent(),
      '0',
    );

    // A malformed rule is refused with the field named, and nothing changes.
    const bad = await fetch(`${lab.consoleUrl}/api/faults/rules`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id: 'x', subject: 'a..b', action: 'drop' }),
    });
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as { code: string }).code, 'FAULT_RULE_INVALID');
    // An injection for no such service, or of no such kind, is refused the same way.
    for (const [body, code] of [
      [{ service: 'nope', kind: 'lose-msi' }, 'FAULT_SERVICE_INVALID'],
      [{ service: 'l0', kind: 'no-such-fault' }, 'DOMAIN_FAULT_INVALID'],
      [{ service: 'l0', kind: 'lose-msi', count: 0 }, 'DOMAIN_FAULT_INVALID'],
    ] as const) {
      const res = await fetch(`${lab.consoleUrl}/api/faults/inject`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(((await res.json()) as { code: string }).code, code, JSON.stringify(body));
    }

    await page.locator('#add-rule button.clear').click();
    await page.locator('#rules tr[data-rule="dup-msi"]').waitFor({ state: 'detached' });
    const after = (await (await fetch(`${lab.consoleUrl}/api/faults`)).json()) as {
      plan: { rules: unknown[] };
    };
    assert.equal(after.plan.rules.length, 0);
  });

  it('lists the stacks it has traces from and filters the recent traces by the one picked', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(lab.consoleUrl);
    // The runs above sent traces from the fleet's stack, `ui`.
    await page.locator('#stack option[value="ui"]').waitFor({ state: 'attached', timeout: 10_000 });
    await page.locator('#stack').selectOption('ui');
    assert.match(page.url(), /[?&]stack=ui$/);
    await page.locator('#traces tr[data-stacks~="ui"]').first().waitFor({ timeout: 10_000 });
    const rows = await page
      .locator('#traces tbody tr')
      .evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-stacks') ?? ''));
    assert.ok(rows.length > 0);
    for (const stacks of rows) assert.ok(stacks.split(' ').includes('ui'), stacks);
    // Reloaded, the page keeps the stack from its URL.
    await page.reload();
    await page.locator('#traces tr[data-stacks~="ui"]').first().waitFor({ timeout: 10_000 });
    assert.equal(await page.locator('#stack').inputValue(), 'ui');
  });
});
