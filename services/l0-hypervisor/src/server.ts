// The only file of this service that listens: telemetry, NATS and the admin
// server are started by runService in the order they need.
import { runService } from '@nestlab/service-kit';
import { createL0Hypervisor } from './app.js';
import { L0Error } from './errors.js';

let mod;
try {
  mod = createL0Hypervisor();
} catch (err) {
  if (!(err instanceof L0Error)) throw err;
  // As runService does for its own variables: one line, exit code 2.
  process.stderr.write(`l0-hypervisor: invalid configuration: ${err.message}\n`);
  process.exit(2);
}
await runService(mod);
