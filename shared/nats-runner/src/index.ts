export * from './nats-server.js';
export * from './auth.js';
export * from './cluster.js';
