export * from './errors.js';
export * from './subjects.js';
export * from './frame.js';
export * from './schema-kit.js';
export * from './envelope.js';
export * from './message.js';
export * from './codec.js';
export * from './messages/svc.js';
