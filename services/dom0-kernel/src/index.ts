export { createDom0Kernel, type Dom0Options } from './app.js';
