export { createDom0Kernel, type Dom0Options } from './app.js';
// What the lab needs to judge blocks independently of the services (experiment checkers).
export { blockContent, describeBlock, type BlockStamp } from './workload/verify.js';
