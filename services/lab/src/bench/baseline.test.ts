import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { startNatsServer, type NatsServerHandle } from '@nestlab/testing';
import { measureBaseline } from './baseline.js';

describe('raw NATS baseline', () => {
  let nats: NatsServerHandle;
  before(async () => {
    nats = await startNatsServer();
  });
  after(() => nats?.stop());

  it('measures 4 KiB request/reply against an echo process and the sequential round trip', async () => {
    const lines: string[] = [];
    const b = await measureBaseline({
      natsUrl: nats.url,
      concurrency: 8,
      requests: 400,
      roundTrips: 100,
      reps: 2,
      progress: (l) => lines.push(l),
    });
    assert.equal(b.reqRep4kConcurrency, 8);
    assert.ok(b.reqRep4kPerSec > 50, `${b.reqRep4kPerSec}/s`);
    assert.ok(b.rttP50Us > 0 && b.rttP50Us < 1e6, `${b.rttP50Us}us`);
    assert.match(lines.join('\n'), /4 KiB req\/rep at 8 in flight \d+, \d+\/s; RTT p50 \d+us/);
    if (existsSync('/proc/self/stat')) {
      // Requester and echo (no nats-server pid given): each round trip costs both some CPU.
      assert.ok((b.cpuUsPerSequentialRoundTrip ?? 0) > 0, JSON.stringify(b));
      assert.match(lines.join('\n'), /per sequential round trip \d+us/);
    }
  });
});
