export type { Brand } from './brand.js';
export * from './layers.js';
export * from './errors.js';
export * from './address.js';
export * from './hex.js';
export * from './translation.js';
export * from './translate.js';
