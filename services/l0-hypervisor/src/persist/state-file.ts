// What a respawned L0 needs to come back as the one that crashed: its last
// configuration and which frames each domain's CPU may touch (Xen's page
// tables live in guest RAM, which survives; L0's copy of them must too).
import { open, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { mkdir } from 'node:fs/promises';
import { CpuFrames, L0Configure } from '@nestlab/protocol';
import type { RequestOf } from '@nestlab/protocol';
import type { L0ConfigureRequest } from '../config.js';

type FrameRanges = RequestOf<typeof CpuFrames>['ranges'];

export interface SavedL0State {
  readonly config: L0ConfigureRequest;
  /** Domain id → its frame ranges, as the last CpuFrames said. */
  readonly frames: Readonly<Record<string, FrameRanges>>;
}

/** `<dataDir>/<stack>-l0-state.json` */
export function stateFilePath(dataDir: string, stack: string): string {
  return join(dataDir, `${stack}-l0-state.json`);
}

/** Why a saved state could not be used (it is then ignored, never half-applied). */
export class SavedStateError extends Error {
  override readonly name = 'SavedStateError';
}

/**
 * The saved state, written atomically (temp file, fsync, rename, fsync of
 * the directory) so a kill at any instant leaves the old or the new file,
 * never a torn one. Saves are serialized in call order.
 */
export class StateFile {
  private chain: Promise<void> = Promise.resolve();

  constructor(readonly path: string) {}

  /** Null when there is none (first start, or the last run stopped cleanly). */
  async load(): Promise<SavedL0State | null> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new SavedStateError(`cannot read ${this.path}: ${String(err)}`);
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new SavedStateError(`${this.path} is not JSON: ${String(err)}`);
    }
    return checkSaved(value, this.path);
  }

  save(state: SavedL0State): Promise<void> {
    const run = this.chain.then(() => writeAtomically(this.path, JSON.stringify(state)));
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** A clean stop: the next start is a power-on, not a respawn. */
  remove(): Promise<void> {
    const run = this.chain.then(() => rm(this.path, { force: true }));
    this.chain = run.catch(() => undefined);
    return run;
  }
}

function checkSaved(value: unknown, path: string): SavedL0State {
  const v = value as Partial<SavedL0State> | null;
  if (typeof v !== 'object' || v === null || !L0Configure.request.check(v.config)) {
    throw new SavedStateError(`${path}: config is not an l0.stack.configure request`);
  }
  const frames = v.frames ?? {};
  if (typeof frames !== 'object' || frames === null) {
    throw new SavedStateError(`${path}: frames is not an object`);
  }
  for (const [domain, ranges] of Object.entries(frames)) {
    if (!CpuFrames.request.check({ domain: Number(domain), ranges })) {
      throw new SavedStateError(`${path}: frames of dom${domain} are not valid ranges`);
    }
  }
  return { config: v.config, frames };
}

async function writeAtomically(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(text, 'utf8');
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
  // The rename itself must be durable too.
  const dir = await open(dirname(path), 'r');
  try {
    await dir.sync().catch(() => undefined);
  } finally {
    await dir.close();
  }
}
