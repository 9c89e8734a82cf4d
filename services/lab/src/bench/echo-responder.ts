// The other process of the raw NATS baseline: answers every request on one
// subject with its own payload, and nothing else. Started by baseline.ts.
import { connect } from '@nats-io/transport-node';
import { watchParent } from '@nestlab/service-kit';

const [url, subject] = process.argv.slice(2);
if (!url || !subject) {
  process.stderr.write('usage: echo-responder <nats-url> <subject>\n');
  process.exit(2);
}
// The bench died (even mid-connect): leave too.
let closeNats = () => Promise.resolve();
watchParent(() => closeNats());
const user = process.env['NATS_USER'];
const pass = process.env['NATS_PASS'];
const nc = await connect({ servers: url.split(','), ...(user && pass ? { user, pass } : {}) });
closeNats = () => nc.close();
nc.subscribe(subject, {
  callback: (_err, msg) => {
    msg.respond(msg.data);
  },
});
await nc.flush();
process.stdout.write('ready\n');
process.once('SIGTERM', () => {
  void nc.close().finally(() => process.exit(0));
});
