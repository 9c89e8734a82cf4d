// Checks the composed NATS enforces per-service permissions (deploy/nats/nats.conf):
// the xen user publishing on an l0 subject it has no business with (PCI
// config), or subscribing to l0's subjects, gets the server's async
// "Permissions Violation"; the same user publishing on
// a subject Xen does emit (an event channel notify) gets none; a wrong
// password is refused. Prints one JSON object; exits 0 when every check holds.
// Env: NATS_URL, NESTLAB_STACK, NESTLAB_XEN_PASS.
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from '@nats-io/transport-node';

const servers = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const stack = process.env.NESTLAB_STACK ?? 's1';
const pass = process.env.NESTLAB_XEN_PASS ?? 'xen-dev';
const WAIT_MS = 1500;

/** Publishes once and collects the permission errors the server reports within WAIT_MS. */
async function publishAs(user, password, subject) {
  const nc = await connect({ servers, user, pass: password, name: 'nestlab-permission-probe' });
  const errors = [];
  const watching = (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'error') errors.push({ name: s.error?.name, message: s.error?.message });
    }
  })();
  nc.publish(subject, new Uint8Array(0));
  await nc.flush();
  await sleep(WAIT_MS);
  await nc.close();
  await watching;
  return errors;
}

async function subscribeAs(user, password, subject) {
  const nc = await connect({ servers, user, pass: password, name: 'nestlab-permission-probe' });
  const sub = nc.subscribe(subject);
  let error = null;
  const closed = sub.closed.then(
    (e) => (error = e ? String(e.message) : null),
    (e) => (error = String(e?.message ?? e)),
  );
  await nc.flush();
  await Promise.race([closed, sleep(WAIT_MS)]);
  await nc.close();
  return error;
}

async function wrongPassword() {
  try {
    const nc = await connect({ servers, user: 'xen', pass: `${pass}-wrong`, reconnect: false });
    await nc.close();
    return null;
  } catch (e) {
    return String(e?.message ?? e);
  }
}

const denied = await publishAs('xen', pass, `nestlab.${stack}.l0.pci.config`);
const allowed = await publishAs('xen', pass, `nestlab.${stack}.dom0.evtchn.4095.notify`);
const deniedSub = await subscribeAs('xen', pass, `nestlab.${stack}.l0.>`);
const refused = await wrongPassword();

const checks = {
  deniedPublish: denied.some((e) => /permission/i.test(`${e.name} ${e.message}`)),
  allowedPublish: allowed.length === 0,
  deniedSubscribe: deniedSub !== null && /permission/i.test(deniedSub),
  wrongPasswordRefused: refused !== null,
};
process.stdout.write(`${JSON.stringify({ checks, denied, allowed, deniedSub, refused })}\n`);
process.exit(Object.values(checks).every(Boolean) ? 0 : 1);
