// The console's run request takes exactly the CLI's values: each limit at
// its edge is accepted, one past it and anything not a whole number is a 400
// naming the field. With no fleet attached, an accepted body reaches the
// handler and gets 503 NO_FLEET, so 503 here means "the body was valid".
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RUN_LIMITS } from '../run/limits.js';
import { buildConsole } from './app.js';

const app = buildConsole();
const post = (body: unknown) =>
  app.inject({
    method: 'POST',
    url: '/api/scenarios/kvm-guest-baseline/run',
    headers: { 'content-type': 'application/json' },
    payload: typeof body === 'string' ? body : JSON.stringify(body),
  });

describe('POST /api/scenarios/:id/run validates its body with the CLI limits', () => {
  for (const [field, { min, max }] of Object.entries(RUN_LIMITS)) {
    it(`${field}: ${min} and ${max} are accepted, ${min - 1} and ${max + 1} refused`, async () => {
      for (const ok of [min, max]) assert.equal((await post({ [field]: ok })).statusCode, 503);
      for (const bad of [min - 1, max + 1]) {
        const res = await post({ [field]: bad });
        assert.equal(res.statusCode, 400, `${field} ${bad}`);
        assert.equal(res.json().code, 'INVALID_REQUEST');
        assert.match(res.json().message, new RegExp(`body/${field} must be`));
      }
    });
  }

  it('refuses huge, negative, fractional and non-numeric values instead of clamping them', async () => {
    const bad = [
      { ios: 1e12 },
      { ios: -5 },
      { ios: 2.5 },
      { seed: 'x' },
      { seed: '7' }, // no coercion: a string is not a number
      { iodepth: 1e300 },
      { iodepth: null },
      { seed: -1 },
      { ios: 1, extra: true },
    ];
    for (const body of bad) {
      const res = await post(body);
      assert.equal(res.statusCode, 400, JSON.stringify(body));
      assert.ok(res.json().message.length > 0);
    }
    // Not JSON at all: fastify's parser refuses it, still a 400 with a message.
    const raw = await post('{"ios": ');
    assert.equal(raw.statusCode, 400);
    assert.match(raw.json().message, /JSON/);
  });

  it("accepts an empty or absent body (every knob defaults to the scenario's)", async () => {
    assert.equal((await post({})).statusCode, 503);
    const none = await app.inject({ method: 'POST', url: '/api/scenarios/kvm-guest-baseline/run' });
    assert.equal(none.statusCode, 503);
  });

  it('cancel with no run in progress is a 409', async () => {
    const res = await app.inject({ method: 'POST', url: '/api/run/cancel' });
    assert.equal(res.statusCode, 409);
    assert.equal(res.json().code, 'NO_RUN_IN_PROGRESS');
  });
});
