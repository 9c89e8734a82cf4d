export { createL0Hypervisor } from './app.js';
