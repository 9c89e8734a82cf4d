// The only file of this service that listens: telemetry, NATS and the admin
// server are started by runService in the order they need.
import { runService } from '@nestlab/service-kit';
import { createL0Hypervisor } from './app.js';

await runService(createL0Hypervisor());
