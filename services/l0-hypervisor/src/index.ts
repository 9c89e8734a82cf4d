export { createL0Hypervisor, type L0Options } from './app.js';
export { L0Error, type L0ErrorCode } from './errors.js';
