// Replacing a state file so that a kill or a power cut at any instant leaves
// the old contents or the new, never a torn file: write a temp file beside
// it, fsync it, rename it over the old one, fsync the directory (the rename
// is only durable once the directory entry is). One helper for every
// service's saved state (journal compaction, L0's and dom0's saved state).
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { errorFamily } from '@nestlab/protocol';

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

/** Why a saved state could not be used (it is then ignored, never half-applied). */
export const SavedStateError = errorFamily('SavedStateError', {
  /** The file exists but could not be read. */
  STATE_UNREADABLE: 'transient',
  /** The file is not JSON, or not the state its service saves. */
  STATE_INVALID: 'input',
});
export type SavedStateError = InstanceType<typeof SavedStateError>;

/**
 * A service's saved state as one JSON file, replaced atomically
 * (writeFileAtomic). Saves and removal run in call order, so an older state
 * never lands after a newer one. `check` turns the parsed JSON into
 * `{ state }`, or says in a few words what is wrong with it (`{ problem }`).
 */
export class JsonStateFile<T> {
  private chain: Promise<void> = Promise.resolve();

  constructor(
    readonly path: string,
    private readonly check: (value: unknown) => { state: T } | { problem: string },
  ) {}

  /** Null when there is none (first start, or the last run stopped cleanly). */
  async load(): Promise<T | null> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new SavedStateError('STATE_UNREADABLE', `cannot read ${this.path}: ${String(err)}`);
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new SavedStateError('STATE_INVALID', `${this.path} is not JSON: ${String(err)}`);
    }
    const checked = this.check(value);
    if ('problem' in checked) {
      throw new SavedStateError('STATE_INVALID', `${this.path}: ${checked.problem}`);
    }
    return checked.state;
  }

  save(state: T): Promise<void> {
    return this.inOrder(() => writeFileAtomic(this.path, JSON.stringify(state)));
  }

  /** A clean stop: the next start is a power-on, not a respawn. */
  remove(): Promise<void> {
    return this.inOrder(() => rm(this.path, { force: true }));
  }

  private inOrder(step: () => Promise<void>): Promise<void> {
    const run = this.chain.then(step);
    this.chain = run.catch(() => undefined);
    return run;
  }
}
