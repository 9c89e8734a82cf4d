export { createXen } from './app.js';
