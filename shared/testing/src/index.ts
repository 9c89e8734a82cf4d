export * from './nats-server.js';
export * from './free-port.js';
export * from './wait.js';
