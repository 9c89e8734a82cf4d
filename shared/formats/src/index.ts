// What the services, the lab and the reference runs agree on outside NATS
// messages (those live in @nestlab/protocol): bytes on the disk, where the
// disk image is, and the shape of a run's report.
export * from './block-stamp.js';
export * from './disk-image.js';
export * from './run-report.js';
