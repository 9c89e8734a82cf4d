export { createIommu } from './app.js';
