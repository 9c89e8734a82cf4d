import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  Ping,
  ProtocolError,
  RemoteError,
  decodeFrame,
  decodeReply,
  decodeRequest,
  deviceToken,
  encodeErrorReply,
  encodeFrame,
  encodeReply,
  encodeRequest,
  subject,
  subjectOf,
  subscriptionOf,
} from './index.js';
import { eventMessage } from './message.js';
import { Type } from '@sinclair/typebox';

describe('subjects', () => {
  it('follows nestlab.<stack>.<service>.<object>.<verb>', () => {
    assert.equal(subject('s1', 'l0', 'mem', 'write'), 'nestlab.s1.l0.mem.write');
    assert.equal(subjectOf(Ping.xen, 's1'), 'nestlab.s1.xen.svc.ping');
  });

  it('turns a PCI address into one token and rejects unsafe tokens', () => {
    assert.equal(deviceToken('0000:00:04.0'), 'pci-0000-00-04-0');
    assert.throws(() => deviceToken('00:04.0'), { code: 'BAD_SUBJECT' });
    assert.throws(() => subject('s.1', 'l0', 'mem', 'write'), { code: 'BAD_SUBJECT' });
    assert.throws(() => subject('s1', 'l0', 'mem', '>'), { code: 'BAD_SUBJECT' });
  });

  it('fills parameters and subscribes with wildcards', () => {
    const notify = eventMessage({
      name: 'l0.dev.notify',
      service: 'l0',
      object: 'dev.{dev}',
      verb: 'notify',
      request: Type.Object({ queue: Type.Integer() }),
    });
    assert.equal(
      subjectOf(notify, 's1', { dev: 'pci-0000-00-04-0' }),
      'nestlab.s1.l0.dev.pci-0000-00-04-0.notify',
    );
    assert.equal(subscriptionOf(notify, 's1'), 'nestlab.s1.l0.dev.*.notify');
    assert.throws(() => subjectOf(notify, 's1'), /missing subject parameter dev/);
  });
});

describe('frames', () => {
  it('carries a JSON head and raw bytes, bigints as hex', () => {
    const data = new Uint8Array([0, 1, 2, 255]);
    const f = decodeFrame(encodeFrame({ addr: 0x764d4000n, n: 1 }, data));
    assert.deepEqual(f.head, { addr: '0x764d4000', n: 1 });
    assert.deepEqual([...f.data], [0, 1, 2, 255]);
  });

  it('copies data given in parts into the frame in order', () => {
    const f = decodeFrame(encodeFrame({ n: 1 }, [new Uint8Array([1, 2]), new Uint8Array([3])]));
    assert.deepEqual([...f.data], [1, 2, 3]);
  });

  it('rejects truncated, oversized and non-JSON frames with codes', () => {
    assert.throws(() => decodeFrame(new Uint8Array([1, 0])), { code: 'BAD_FRAME' });
    const lying = encodeFrame({ a: 1 });
    new DataView(lying.buffer).setUint32(0, 1000, true);
    assert.throws(() => decodeFrame(lying), { code: 'BAD_FRAME' });
    const notJson = new Uint8Array([3, 0, 0, 0, 0x7b, 0x7b, 0x7d]);
    assert.throws(() => decodeFrame(notJson), { code: 'BAD_JSON' });
    const badUtf8 = new Uint8Array([2, 0, 0, 0, 0xff, 0xfe]);
    assert.throws(() => decodeFrame(badUtf8), { code: 'BAD_FRAME' });
  });
});

describe('validated messages', () => {
  it('accepts a good request and names the bad field of a wrong one', () => {
    const ok = decodeRequest(Ping.l0, encodeRequest(Ping.l0, { from: 'test' }));
    assert.equal(ok.head.from, 'test');
    assert.throws(
      () => decodeRequest(Ping.l0, encodeFrame({ from: 7 })),
      (err: ProtocolError) => {
        assert.equal(err.code, 'SCHEMA_INVALID');
        assert.match(err.message, /\/from/);
        return true;
      },
    );
    assert.throws(() => decodeRequest(Ping.l0, encodeFrame({ from: 'x', extra: 1 })), {
      code: 'SCHEMA_INVALID',
    });
    assert.throws(() => decodeRequest(Ping.l0, encodeFrame({ from: 'x' }, new Uint8Array(3))), {
      code: 'BAD_FRAME',
    });
  });

  it('rethrows an error reply as a RemoteError with its code', () => {
    const bytes = encodeErrorReply(new ProtocolError('SCHEMA_INVALID', 'bad'));
    assert.throws(
      () => decodeReply(Ping.l0, 'nestlab.s1.l0.svc.ping', bytes),
      (err: RemoteError) =>
        err instanceof RemoteError && err.code === 'SCHEMA_INVALID' && err.kind === 'input',
    );
    const good = encodeReply(Ping.l0, {
      service: 'l0',
      stack: 's1',
      pid: 1,
      uptimeMs: 2,
      ready: true,
    });
    assert.equal(decodeReply(Ping.l0, 'x', good).head.service, 'l0');
  });
});
