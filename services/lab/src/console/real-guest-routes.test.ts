// The run store and the console API for real-guest runs: saved apart from the
// scenario's emulated run, listed and served, and every bad file or request
// answered with a typed error. Real files in a scratch run store.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { reference } from '../cli/reference.js';
import { backendOtlp } from '../cli/reference-nestlab.js';
import { UsageError } from '../cli/usage.js';
import { REAL_GUEST_SOURCE, realGuestRun, type SavedReport } from '../run/real-guest-run.js';
import { lastReport, realGuestDir, saveRealGuestRun } from '../run/store.js';
import { buildConsole } from './app.js';

const SUM = '0123456789abcdef0123456789abcdef';
const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';

function report(over: Partial<SavedReport> = {}): SavedReport {
  return {
    outcome: 'ok',
    guest: { wrote: true, read: true, sumPattern: SUM, sumBack: SUM },
    expectedSum: SUM,
    imageSum: SUM,
    dma: {
      records: 9000,
      byVerdict: { translated: 9000 },
      byWhat: { desc: 3000, avail: 2000, used: 2000, buffer: 2000 },
      bufferBytesRead: 4 << 20,
      bufferBytesWritten: 4 << 20,
      traceIds: [TRACE],
    },
    errors: [],
    elapsedMs: 61_000,
    ...over,
  };
}

describe('real-guest runs in the run store and the console API', () => {
  let runs: string;
  before(() => {
    runs = mkdtempSync(join(tmpdir(), 'nestlab-rg-'));
    process.env['NESTLAB_RUNS'] = runs;
  });
  after(() => rmSync(runs, { recursive: true, force: true }));

  it('saves a run apart from the emulated one and serves it, newest first', async () => {
    const viommu = realGuestRun('viommu-access-platform', true, report(), 'http://127.0.0.1:1');
    saveRealGuestRun(viommu);
    const plain = realGuestRun(
      'kvm-guest-baseline',
      false,
      report({ outcome: 'failed', errors: ['the guest did not finish'] }),
      null,
      new Date(Date.now() + 1000),
    );
    saveRealGuestRun(plain);
    assert.equal(lastReport('viommu-access-platform'), null, 'the emulated last run is untouched');
    const app = buildConsole();
    const list = await app.inject('/api/real-guest-runs');
    assert.equal(list.statusCode, 200);
    assert.deepEqual(list.json(), { runs: [plain, viommu], unreadable: [] });
    const one = (await app.inject('/api/real-guest-runs/viommu-access-platform')).json();
    assert.equal(one.kind, 'real-guest');
    assert.equal(one.source, REAL_GUEST_SOURCE);
    assert.equal(one.expectedVerdict, 'translated');
    assert.deepEqual(one.nestlab.byVerdict, { translated: 9000 });
    assert.deepEqual(one.guest, { wrote: true, read: true, sumPattern: SUM, sumBack: SUM });
    const scenarios = (await app.inject('/api/scenarios')).json() as {
      scenarios: { id: string; lastRun: unknown }[];
    };
    assert.equal(scenarios.scenarios.find((s) => s.id === 'kvm-guest-baseline')?.lastRun, null);
  });

  it('answers a bad id, a missing run and a broken file with typed errors', async () => {
    const app = buildConsole();
    const bad = await app.inject('/api/real-guest-runs/..%2F..%2Fetc');
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().code, 'INVALID_REQUEST');
    const missing = await app.inject('/api/real-guest-runs/xen-pv-dom0-legacy');
    assert.equal(missing.statusCode, 404);
    assert.equal(missing.json().code, 'REAL_GUEST_RUN_NOT_FOUND');

    mkdirSync(realGuestDir(), { recursive: true });
    writeFileSync(join(realGuestDir(), 'half-written.json'), '{"kind":"real-gu');
    writeFileSync(
      join(realGuestDir(), 'old-format.json'),
      JSON.stringify({ kind: 'real-guest', scenario: 'old-format' }),
    );
    const list = (await app.inject('/api/real-guest-runs')).json() as {
      runs: unknown[];
      unreadable: { file: string; message: string }[];
    };
    assert.equal(list.runs.length, 2, 'the good runs still list');
    assert.deepEqual(
      list.unreadable.map((u) => u.file),
      ['half-written.json', 'old-format.json'],
    );
    assert.match(list.unreadable[0]?.message ?? '', /not JSON/);
    assert.match(list.unreadable[1]?.message ?? '', /real-guest run: \/source/);
    const broken = await app.inject('/api/real-guest-runs/old-format');
    assert.equal(broken.statusCode, 422);
    assert.equal(broken.json().code, 'RUN_UNREADABLE');
  });

  it('refuses to store a run that is not one', () => {
    const run = realGuestRun('kvm-guest-baseline', false, report(), null);
    assert.throws(
      () => saveRealGuestRun({ ...run, scenario: '../escape' }),
      (e: Error & { code?: string }) => e.code === 'SCHEMA_INVALID' && /scenario/.test(e.message),
    );
    assert.throws(
      () => saveRealGuestRun({ ...run, nestlab: { ...run.nestlab, traceIds: ['not-a-trace'] } }),
      (e: Error & { code?: string }) => e.code === 'SCHEMA_INVALID',
    );
  });

  it("sends the back-end's spans where the services' go: --console, the user's OTEL env, `nestlab up`", () => {
    const fleet = () => 'http://127.0.0.1:7700';
    const flag = backendOtlp('http://10.0.0.2:9000/', { OTEL_EXPORTER_OTLP_ENDPOINT: 'x' }, fleet);
    assert.deepEqual(flag, {
      endpoint: 'http://10.0.0.2:9000',
      consoleUrl: 'http://10.0.0.2:9000',
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://10.0.0.2:9000',
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://10.0.0.2:9000/v1/traces',
      },
    });
    const user = backendOtlp(undefined, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel:4318' }, fleet);
    assert.deepEqual(user, { endpoint: 'http://otel:4318', consoleUrl: null, env: {} });
    assert.equal(backendOtlp(undefined, {}, fleet).consoleUrl, 'http://127.0.0.1:7700');
    assert.deepEqual(
      backendOtlp(undefined, {}, () => null),
      {
        endpoint: null,
        consoleUrl: null,
        env: {},
      },
    );
    assert.throws(() => backendOtlp('localhost:7700', {}, fleet), /--console takes/);
  });

  it('takes --console only with --device nestlab, and refuses it before booting anything', async () => {
    await assert.rejects(
      reference(['--console', 'http://127.0.0.1:1', 'kvm-guest-baseline']),
      (e: Error) => e instanceof UsageError && /--device nestlab/.test(e.message),
    );
    await assert.rejects(
      reference(['--device', 'nestlab', '--console', 'not-a-url', 'kvm-guest-baseline']),
      (e: Error) => e instanceof UsageError && /--console takes/.test(e.message),
    );
  });
});
