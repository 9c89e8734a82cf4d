// The part of usocket (a native addon: unix sockets with SCM_RIGHTS) the
// backend uses, typed here, loaded lazily: it is an optional dependency, and
// only the vhost-user backend needs it.
import { createRequire } from 'node:module';
import type { Duplex } from 'node:stream';
import { VhostUserError } from './errors.js';

export interface USocket extends Duplex {
  /** With a second argument: data and `fdCount` descriptors together, or null until both are in. */
  read(size?: number): Buffer | null;
  read(size: number, fdCount: number): { data: Buffer | null; fds: number[] } | null;
  destroy(): this;
}

export interface UServer {
  listen(path: string, cb?: () => void): void;
  close(): void;
  on(event: 'connection', fn: (s: USocket) => void): this;
  on(event: 'error', fn: (e: unknown) => void): this;
}

/** The client side (a front-end; the tests play QEMU with it). */
export interface UClient extends USocket {
  connect(path: string, cb?: () => void): void;
}

interface UsocketModule {
  UServer: new () => UServer;
  USocket: new () => UClient;
}

export function loadUsocket(): UsocketModule {
  try {
    return createRequire(import.meta.url)('usocket') as UsocketModule;
  } catch (cause) {
    throw new VhostUserError(
      'ADDON_MISSING',
      'the vhost-user backend needs the `usocket` native addon (npm install builds it with node-gyp and g++)',
      { cause },
    );
  }
}
