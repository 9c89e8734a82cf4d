export * from './injector.js';
export * from './apply.js';
export * from './subject-match.js';
export * from './domain.js';
