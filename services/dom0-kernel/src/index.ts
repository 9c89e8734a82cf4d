export { createDom0Kernel } from './app.js';
