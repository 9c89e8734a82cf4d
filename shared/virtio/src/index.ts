// Public surface of @nestlab/virtio. Test helpers (RingImage,
// SparseTestMemory) live behind the `@nestlab/virtio/testing` subpath.
export * from './errors.js';
export * from './constants.js';
export * from './feature-set.js';
export * from './split-ring-layout.js';
export * from './split-queue.js';
export * from './need-event.js';
export * from './ring-memory.js';
export * from './chain-walker.js';
export * from './used-ring.js';
export * from './device-queue.js';
export * from './pci.js';
export * from './mmio.js';
export * from './mmio-legacy.js';
export * from './blk.js';
