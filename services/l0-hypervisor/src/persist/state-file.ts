// What a respawned L0 needs to come back as the one that crashed: its last
// configuration and which frames each domain's CPU may touch (Xen's page
// tables live in guest RAM, which survives; L0's copy of them must too).
import { join } from 'node:path';
import { CpuFrames, L0Configure } from '@nestlab/protocol';
import type { RequestOf } from '@nestlab/protocol';
import { JsonStateFile } from '@nestlab/service-kit';
import type { L0ConfigureRequest } from '../config.js';

export { SavedStateError } from '@nestlab/service-kit';

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

/** L0's saved state: written atomically, loaded whole or refused (SavedStateError). */
export class StateFile extends JsonStateFile<SavedL0State> {
  constructor(path: string) {
    super(path, checkSaved);
  }
}

function checkSaved(value: unknown): { state: SavedL0State } | { problem: string } {
  const v = value as Partial<SavedL0State> | null;
  if (typeof v !== 'object' || v === null || !L0Configure.request.check(v.config)) {
    return { problem: 'config is not an l0.stack.configure request' };
  }
  const frames = v.frames ?? {};
  if (typeof frames !== 'object' || frames === null) return { problem: 'frames is not an object' };
  for (const [domain, ranges] of Object.entries(frames)) {
    if (!CpuFrames.request.check({ domain: Number(domain), ranges })) {
      return { problem: `frames of dom${domain} are not valid ranges` };
    }
  }
  return { state: { config: v.config, frames } };
}
