export * from './fleet/fleet.js';
export * from './fleet/services.js';
