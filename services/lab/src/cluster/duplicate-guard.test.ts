// A second instance of a service on the same stack would handle every
// message twice; it must refuse to start (exit 2, one line) while the first
// keeps serving. Real fleet, real per-service NATS users.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Ping } from '@nestlab/protocol';
import { startFleet, type Fleet } from '../fleet/fleet.js';
import { labSeat } from '../fleet/lab-seat.js';
import { anyFreePort } from '../fleet/ports.js';

const STACK = 'dg';

describe('duplicate-instance guard', () => {
  let fleet: Fleet;
  const scratch = mkdtempSync(join(tmpdir(), 'nestlab-dup-'));

  before(async () => {
    fleet = await startFleet({
      stack: STACK,
      natsPort: 0,
      adminBasePort: 0,
      auth: true,
      readyTimeoutMs: 60_000,
      logDir: join(scratch, 'logs'),
      env: { NESTLAB_DATA_DIR: join(scratch, 'data'), LOG_LEVEL: 'warn' },
    });
  });
  after(async () => {
    await fleet?.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  for (const svc of ['xen', 'l0'] as const) {
    it(`a second ${svc} on the same stack exits 2 with one line; the first keeps serving`, async () => {
      const first = fleet.services.find((p) => p.service.token === svc)!;
      const seat = fleet.auth!.credentials[svc];
      const child = spawn(process.execPath, [first.service.entry], {
        env: {
          ...process.env,
          NATS_URL: fleet.natsUrl,
          NESTLAB_STACK: STACK,
          NATS_USER: seat.user,
          NATS_PASS: seat.pass,
          ADMIN_HOST: '127.0.0.1',
          ADMIN_PORT: String(await anyFreePort()),
          NESTLAB_DATA_DIR: join(scratch, `second-${svc}`),
          LOG_LEVEL: 'warn',
        },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
      clearTimeout(timer);
      assert.equal(code, 2, stderr);
      const lines = stderr.trim().split('\n');
      assert.equal(lines.length, 1, stderr);
      assert.match(
        lines[0]!,
        new RegExp(
          `^${first.service.name}: another instance already serves stack ${STACK} \\(pid ${first.process.pid},`,
        ),
      );
      const { bus, close } = await labSeat(fleet.natsUrl, STACK, fleet.labAuth);
      try {
        const pong = await bus.request(Ping[svc], { from: 'test' });
        assert.equal(pong.head.pid, first.process.pid);
      } finally {
        await close();
      }
    });
  }
});
