// Kick and call: eventfds the front-end passes (SET_VRING_KICK/CALL). An
// eventfd holds a 64-bit counter: a write of 8 bytes adds to it, a read
// returns it and clears it. The kick is polled: a read that finds the counter
// at zero fails with EAGAIN and costs one syscall. Waiting without polling
// was tried, and Node offers no way (checked on Node 24, Linux 6.1):
// - net.Socket({ fd }) refuses it: libuv guesses an eventfd's type as UNKNOWN
//   (ERR_INVALID_FD_TYPE), so the event loop will not watch it;
// - fs reads cannot block: QEMU creates it with EFD_NONBLOCK, a flag of the
//   open file it shares with us (Node has no fcntl to clear it, and clearing
//   it would change QEMU's side too), and reopening /proc/self/fd/N to get a
//   blocking copy fails with ENXIO (an eventfd is an anonymous inode);
// - usocket does run a uv_poll on any fd it adopts, but on readability it
//   calls recvmsg, which fails with ENOTSOCK on an eventfd, and its error
//   path closes the fd.
// Watching it needs a native uv_poll_t of our own; at 1 ms a poll costs one
// failed read, and a request under TCG takes far longer than that.
import { closeSync, readSync, writeSync } from 'node:fs';

/** How often an idle kick fd is looked at; a guest under TCG takes far longer per request. */
export const KICK_POLL_MS = 1;

export class KickPoller {
  private timer: NodeJS.Timeout | null = null;
  private readonly buf = new Uint8Array(8);

  constructor(
    readonly fd: number,
    private readonly onKick: () => void,
    private readonly onError: (err: unknown) => void,
  ) {
    this.timer = setInterval(() => this.poll(), KICK_POLL_MS);
  }

  /** One look: true when the driver had kicked since the last one. */
  poll(): boolean {
    try {
      if (readSync(this.fd, this.buf, 0, 8, null) !== 8) return false;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return false;
      this.stop();
      this.onError(err);
      return false;
    }
    this.onKick();
    return true;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    closeQuietly(this.fd);
  }
}

const ONE = new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0]);

/** The used-buffer notification: add 1 to the call eventfd (QEMU injects the guest's interrupt). */
export function signalCall(fd: number): boolean {
  try {
    return writeSync(fd, ONE, 0, 8) === 8;
  } catch {
    return false; // EAGAIN: the counter is saturated, the guest has an interrupt pending anyway
  }
}

export function closeQuietly(fd: number | null): void {
  if (fd === null || fd < 0) return;
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}
