import { gzipSync } from 'node:zlib';

/** One initramfs entry; directories have no data. */
export interface CpioEntry {
  path: string;
  mode: number;
  data?: Uint8Array;
}

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
export const DIR = (path: string, perm = 0o755): CpioEntry => ({ path, mode: S_IFDIR | perm });
export const FILE = (path: string, data: Uint8Array, perm = 0o644): CpioEntry => ({
  path,
  mode: S_IFREG | perm,
  data,
});

const hex8 = (n: number) => n.toString(16).padStart(8, '0');
const pad4 = (n: number) => (4 - (n % 4)) % 4;

/**
 * The "newc" cpio archive the kernel unpacks as an initramfs
 * (Documentation/driver-api/early-userspace/buffer-format.rst): a 110-byte
 * ASCII header, the NUL-terminated name, data, each padded to 4 bytes, then TRAILER!!!.
 */
export function cpioNewc(entries: readonly CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let ino = 1;
  const push = (name: string, mode: number, data: Uint8Array) => {
    const nameBytes = Buffer.from(`${name}\0`, 'utf8');
    const fields = [
      ino++,
      mode,
      0,
      0,
      mode & S_IFDIR ? 2 : 1,
      0,
      data.length,
      0,
      0,
      0,
      0,
      nameBytes.length,
      0,
    ];
    const header = Buffer.from(`070701${fields.map(hex8).join('')}`, 'ascii');
    parts.push(header, nameBytes, Buffer.alloc(pad4(header.length + nameBytes.length)));
    parts.push(Buffer.from(data), Buffer.alloc(pad4(data.length)));
  };
  for (const e of entries) push(e.path.replace(/^\/+/, ''), e.mode, e.data ?? new Uint8Array());
  push('TRAILER!!!', 0, new Uint8Array());
  return Buffer.concat(parts);
}

export function gzipCpio(entries: readonly CpioEntry[]): Buffer {
  return gzipSync(cpioNewc(entries), { level: 1 });
}
