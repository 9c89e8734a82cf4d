// Replacing a state file so that a kill or a power cut at any instant leaves
// the old contents or the new, never a torn file: write a temp file beside
// it, fsync it, rename it over the old one, fsync the directory (the rename
// is only durable once the directory entry is). One helper for every
// service's saved state (journal compaction, L0's saved configuration).
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';

const tmpOf = (path: string) => `${path}.${process.pid}.tmp`;

/** Synchronous: for callers that must not yield between deciding and saving (journals). */
export function writeFileAtomicSync(path: string, data: string | Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = tmpOf(path);
  try {
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  syncDirSync(dirname(path));
}

export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = tmpOf(path);
  try {
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  const dir = await open(dirname(path), 'r');
  try {
    await dir.sync().catch(() => undefined); // some filesystems refuse fsync on a directory
  } finally {
    await dir.close();
  }
}

function syncDirSync(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } catch {
    // some filesystems refuse fsync on a directory; the rename stands
  } finally {
    closeSync(fd);
  }
}
