import { Worker } from 'node:worker_threads';

// A child of the lab exits by itself when its parent dies, even by SIGKILL:
// the parent spawns it with stdin as a pipe it never writes and sets
// PARENT_WATCH_ENV; the kernel closes the parent's end when the parent ends,
// however it ends, and the child reads end-of-file. Signals cannot do this
// (a SIGKILLed parent forwards nothing), and polling process.ppid cannot
// either (Node reads it once at startup).

/** Set to "stdin" in a child's env to make `watchParent` watch its stdin pipe. */
export const PARENT_WATCH_ENV = 'NESTLAB_PARENT_WATCH';

/** What a parent passes to `spawn` so its child can watch it: stdin a pipe, the env flag. */
export function watchedChild(env: NodeJS.ProcessEnv): {
  env: NodeJS.ProcessEnv;
  stdin: 'pipe';
} {
  return { env: { ...env, [PARENT_WATCH_ENV]: 'stdin' }, stdin: 'pipe' };
}

/*
 * The watch runs in a worker thread that blocks reading fd 0: a main thread
 * busy with a storm of failing I/Os (its NATS gone with the parent) may not
 * turn its event loop for a long time, but the worker still sees the end and,
 * if the graceful stop has not finished by the deadline, kills the process.
 */
const WATCHER = `
const { readSync } = require('node:fs');
const { parentPort, workerData } = require('node:worker_threads');
const buf = Buffer.alloc(256);
const nap = new Int32Array(new SharedArrayBuffer(4));
for (;;) {
  let n;
  try { n = readSync(0, buf); } catch (err) {
    if (err.code === 'EAGAIN') { Atomics.wait(nap, 0, 0, 100); continue; }
    n = 0;
  }
  if (n === 0) break;
}
parentPort.postMessage('gone');
setTimeout(() => process.kill(process.pid, 'SIGKILL'), workerData.graceMs);
`;

/**
 * When this process was started by `watchedChild`, calls `onParentGone` once
 * its parent has died and exits when it has finished; if it has not within
 * `graceMs`, the process is killed. Does nothing otherwise (a service run by
 * hand or by compose). Returns whether it watches.
 */
export function watchParent(onParentGone: () => Promise<unknown>, graceMs = 2000): boolean {
  if (process.env[PARENT_WATCH_ENV] !== 'stdin') return false;
  const watcher = new Worker(WATCHER, { eval: true, workerData: { graceMs } });
  watcher.unref();
  watcher.once('message', () => {
    void onParentGone().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
  return true;
}
