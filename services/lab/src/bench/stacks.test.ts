import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/nats-core';
import { startNatsServer, type NatsServerHandle } from '@nestlab/testing';
import { runStacks } from './stacks.js';
import type { StacksRun } from './stacks-report.js';

describe('bench --stacks', () => {
  let nats: NatsServerHandle;
  let watcher: NatsConnection;
  let scratch: string;
  before(async () => {
    nats = await startNatsServer();
    watcher = await connect({ servers: nats.url });
    scratch = mkdtempSync(join(tmpdir(), 'nestlab-stacks-'));
  });
  after(async () => {
    await watcher?.close();
    await nats?.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('runs one, then two whole stacks on one nats-server at once, each judged by the oracle', async () => {
    // Every stack-scoped subject the server carries: nestlab.<stack>.…
    const seen = new Set<string>();
    watcher.subscribe('nestlab.>', {
      callback: (_e, m) => {
        seen.add(m.subject.split('.')[1]!);
      },
    });
    await watcher.flush();
    const lines: string[] = [];
    const report = await runStacks(
      { url: nats.url, pid: nats.process.pid },
      {
        counts: [1, 2],
        scenario: 'xen-pv-dom0-dma-api',
        iodepth: 32,
        ios: 256,
        reps: 1,
        warmUpMs: 0,
      },
      scratch,
      (l) => lines.push(l),
    );
    assert.deepEqual(
      report.runs.map((r) => r.stacks),
      [1, 2],
    );
    const [one, two] = report.runs as [StacksRun, StacksRun];
    assert.deepEqual(
      one.perStack.map((s) => s.stack),
      [two.perStack[0]!.stack],
      'K = 1 runs on the first of the same stacks',
    );
    assert.equal(one.scaling, 1);
    assert.ok(one.aggregateIops > 0 && one.failed === 0);
    const tokens = two.perStack.map((s) => s.stack);
    assert.equal(new Set(tokens).size, 2, `two distinct stacks: ${tokens.join(', ')}`);
    for (const s of two.perStack) {
      assert.ok(seen.has(s.stack), `${s.stack} spoke on the shared server (saw ${[...seen]})`);
      assert.equal(s.oracle.pass, true, `${s.stack}: ${s.oracle.outcome}`);
      assert.ok(s.oracle.ios >= 200, `${s.stack}: ${s.oracle.ios} I/Os judged`);
      assert.ok(s.oracle.dmaRecords > 0, `${s.stack}: the oracle saw its DMA`);
      assert.ok(s.iops > 0, `${s.stack} completed measured I/Os`);
      const each = Object.values(s.rssBytesByService);
      assert.equal(each.length, 4, `${s.stack}: RSS of each of its four services`);
      assert.equal(
        s.rssBytes,
        each.reduce((a, b) => a + b, 0),
      );
    }
    assert.equal(two.failed, 0);
    assert.ok(two.aggregateIops > 0);
    assert.ok((two.scaling ?? 0) > 0, 'scaled against the K = 1 run');
    assert.ok((two.cpuUsPerIo ?? 0) > 0, 'CPU of every process, from /proc');
    const services = Object.keys(two.cpuUsPerIoByService ?? {}).sort();
    assert.deepEqual(services, ['dom0-kernel', 'iommu', 'l0-hypervisor', 'nats-server', 'xen']);
    for (const t of tokens)
      assert.ok(
        lines.some((l) => l.startsWith(`${t}: `)),
        t,
      );
  });
});
