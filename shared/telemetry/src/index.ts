export * from './attributes.js';
export * from './setup.js';
export * from './nats-context.js';
