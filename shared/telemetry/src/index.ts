export * from './attributes.js';
export * from './setup.js';
export * from './nats-context.js';
export * from './sampling.js';
export * from './batch-items.js';
export * from './translation.js';
