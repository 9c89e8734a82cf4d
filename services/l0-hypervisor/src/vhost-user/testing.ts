// @nestlab/l0-hypervisor/vhost-user-testing: the fake front-end (QEMU's side
// of vhost-user over a real socket) for tests outside this package, e.g. the
// lab's check that the back-end's spans reach the console. Kept out of the
// main entry so production code cannot come to depend on it.
export { FakeFrontEnd, concat, fifoFd, u32s, u64s } from './fake-front-end.js';
export { REQ } from './protocol.js';
