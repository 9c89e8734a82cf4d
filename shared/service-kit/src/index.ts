export * from './config.js';
export * from './metrics.js';
export * from './bus.js';
export * from './admin.js';
export * from './service.js';
export * from './run.js';
export * from './log.js';
export * from './random.js';
