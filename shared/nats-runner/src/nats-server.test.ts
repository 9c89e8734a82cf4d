import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect } from '@nats-io/transport-node';
import { startNatsServer, type NatsServerHandle } from './nats-server.js';

describe('startNatsServer', () => {
  let server: NatsServerHandle;
  before(async () => {
    server = await startNatsServer();
  });
  after(() => server.stop());

  it('runs a real server on loopback that routes request/reply', async () => {
    assert.match(server.url, /^nats:\/\/127\.0\.0\.1:\d+$/);
    const nc = await connect({ servers: server.url });
    nc.subscribe('echo', { callback: (_err, msg) => void msg.respond(msg.data) });
    const reply = await nc.request('echo', 'hello', { timeout: 2000 });
    assert.equal(reply.string(), 'hello');
    await nc.close();
  });

  it('restarts on the same port after a kill, and a reconnecting client resubscribes', async () => {
    const nc = await connect({
      servers: server.url,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 50,
    });
    nc.subscribe('echo2', { callback: (_err, msg) => void msg.respond(msg.data) });
    const firstPid = server.process.pid;
    await server.restart(100);
    assert.notEqual(server.process.pid, firstPid, 'a new server process');
    // The client finds the server again by itself and re-sends its subscription.
    let reply: string | null = null;
    for (let i = 0; i < 100 && reply === null; i++) {
      try {
        reply = (await nc.request('echo2', 'again', { timeout: 200 })).string();
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    assert.equal(reply, 'again');
    await nc.close();
  });

  it('fails clearly when the binary is missing', async () => {
    const saved = process.env['NATS_SERVER_BIN'];
    process.env['NATS_SERVER_BIN'] = '/nonexistent/nats-server';
    try {
      await assert.rejects(
        startNatsServer(),
        /nats-server not found .*apt-get install nats-server/,
      );
    } finally {
      if (saved === undefined) delete process.env['NATS_SERVER_BIN'];
      else process.env['NATS_SERVER_BIN'] = saved;
    }
  });
});
