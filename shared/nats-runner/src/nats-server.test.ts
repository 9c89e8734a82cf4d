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
