// The only file of this service that listens: telemetry, NATS and the admin
// server are started by runService in the order they need.
import { ConfigError, runService } from '@nestlab/service-kit';
import { createDom0Kernel } from './app.js';

let mod;
try {
  mod = createDom0Kernel();
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  // As runService does for its own variables: one line, exit code 2.
  process.stderr.write(`dom0-kernel: invalid configuration: ${err.message}\n`);
  process.exit(2);
}
await runService(mod);
