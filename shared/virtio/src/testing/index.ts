// @nestlab/virtio/testing: helpers for device and driver tests (a ring image
// written into sparse test memory), kept out of the package's main entry so
// production code cannot come to depend on them.
export * from './sparse-test-memory.js';
export * from './ring-image.js';
