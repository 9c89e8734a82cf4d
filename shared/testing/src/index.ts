export {
  startNatsServer,
  natsServerBinary,
  type NatsServerHandle,
  type NatsServerOptions,
} from '@nestlab/nats-runner';
export * from './free-port.js';
export * from './wait.js';
export * from './spawn-service.js';
export * from './nats-call.js';
export * from './process-control.js';
export * from './metrics-text.js';
export * from './test-fleet.js';
