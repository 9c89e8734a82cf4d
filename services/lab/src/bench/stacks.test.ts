import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/nats-core';
import { startNatsServer, type NatsServerHandle } from '@nestlab/testing';
import { runStacks } from './stacks.js';

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

  it('runs two whole stacks on one nats-server at once, each judged by the oracle', async () => {
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
        counts: [2],
        scenario: 'xen-pv-dom0-dma-api',
        iodepth: 32,
        ios: 256,
        reps: 1,
        warmUpMs: 0,
      },
      scratch,
      (l) => lines.push(l),
    );
    assert.equal(report.runs.length, 1);
    const two = report.runs[0]!;
    assert.equal(two.stacks, 2);
    const tokens = two.perStack.map((s) => s.stack);
    assert.equal(new Set(tokens).size, 2, `two distinct stacks: ${tokens.join(', ')}`);
    for (const s of two.perStack) {
      assert.ok(seen.has(s.stack), `${s.stack} spoke on the shared server (saw ${[...seen]})`);
      assert.equal(s.oracle.pass, true, `${s.stack}: ${s.oracle.outcome}`);
      assert.ok(s.oracle.ios >= 200, `${s.stack}: ${s.oracle.ios} I/Os judged`);
      assert.ok(s.oracle.dmaRecords > 0, `${s.stack}: the oracle saw its DMA`);
      assert.ok(s.iops > 0, `${s.stack} completed measured I/Os`);
      assert.ok((s.rssBytes ?? 0) > 0, `${s.stack}: RSS of its services`);
    }
    assert.equal(two.failed, 0);
    assert.ok(two.aggregateIops > 0);
    assert.equal(two.scaling, null, 'no K = 1 run to scale against');
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
