export {
  startNatsServer,
  natsServerBinary,
  type NatsServerHandle,
  type NatsServerOptions,
} from '@nestlab/nats-runner';
export * from './free-port.js';
export * from './wait.js';
