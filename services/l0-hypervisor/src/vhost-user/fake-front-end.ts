// Test helper: plays QEMU's side of vhost-user over a real unix socket with
// real descriptors — guest RAM in a file, kick and call in FIFOs (read and
// written 8 bytes at a time, as eventfds are).
import { spawnSync } from 'node:child_process';
import { constants, openSync } from 'node:fs';
import { join } from 'node:path';
import { FLAG, HEADER_BYTES } from './protocol.js';
import { loadUsocket, type UClient } from './usocket.js';

export class FakeFrontEnd {
  private buffered = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  closed = false;

  private constructor(private readonly sock: UClient) {
    sock.on('readable', () => {
      for (;;) {
        const chunk = sock.read() as Buffer | null;
        if (!chunk) break;
        this.buffered = Buffer.concat([this.buffered, chunk]);
      }
      this.wake();
    });
    const gone = () => {
      this.closed = true;
      this.wake();
    };
    sock.on('end', gone);
    sock.on('close', gone);
    sock.on('error', gone);
  }

  static connect(path: string): Promise<FakeFrontEnd> {
    const { USocket } = loadUsocket();
    const s = new USocket();
    return new Promise((resolve) => s.connect(path, () => resolve(new FakeFrontEnd(s))));
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  send(
    request: number,
    payload: Uint8Array = new Uint8Array(0),
    fds: number[] = [],
    flags: number = FLAG.VERSION,
  ): void {
    const b = Buffer.alloc(HEADER_BYTES + payload.byteLength);
    b.writeUInt32LE(request, 0);
    b.writeUInt32LE(flags, 4);
    b.writeUInt32LE(payload.byteLength, 8);
    b.set(payload, HEADER_BYTES);
    this.sock.write(fds.length ? { data: b, fds } : b);
  }

  /** The next reply's payload; null once the back-end closed the connection. */
  async reply(): Promise<{ request: number; payload: Buffer } | null> {
    for (;;) {
      if (this.buffered.length >= HEADER_BYTES) {
        const size = this.buffered.readUInt32LE(8);
        if (this.buffered.length >= HEADER_BYTES + size) {
          const request = this.buffered.readUInt32LE(0);
          const payload = this.buffered.subarray(HEADER_BYTES, HEADER_BYTES + size);
          this.buffered = this.buffered.subarray(HEADER_BYTES + size);
          return { request, payload: Buffer.from(payload) };
        }
      }
      if (this.closed) return null;
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  /** Resolves once the back-end has closed the connection. */
  async gone(): Promise<void> {
    while (!this.closed) await new Promise<void>((r) => this.waiters.push(r));
  }

  close(): void {
    this.sock.destroy();
  }
}

/** A FIFO opened read-write and non-blocking: stands in for an eventfd. */
export function fifoFd(dir: string, name: string): number {
  const path = join(dir, name);
  const r = spawnSync('mkfifo', [path]);
  if (r.status !== 0) throw new Error(`mkfifo ${path} failed`);
  return openSync(path, constants.O_RDWR | constants.O_NONBLOCK);
}

export const u32s = (...v: number[]): Uint8Array => {
  const out = new Uint8Array(4 * v.length);
  const d = new DataView(out.buffer);
  v.forEach((x, i) => d.setUint32(4 * i, x, true));
  return out;
};

export const u64s = (...v: bigint[]): Uint8Array => {
  const out = new Uint8Array(8 * v.length);
  const d = new DataView(out.buffer);
  v.forEach((x, i) => d.setBigUint64(8 * i, x, true));
  return out;
};

export const concat = (...parts: Uint8Array[]): Uint8Array => Buffer.concat(parts);
