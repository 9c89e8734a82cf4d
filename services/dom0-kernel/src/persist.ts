// What dom0 keeps across its own crash (SIGKILL + respawn with the same env):
// its last Dom0Configure and whether it had probed the device. A real kernel
// would boot with the same command line and probe again; the lab does not
// re-send stack.configure after a restart. Written atomically (service-kit
// writeFileAtomic), so a crash mid-write leaves the previous file.
import { join } from 'node:path';
import { Dom0Configure, type RequestOf } from '@nestlab/protocol';
import { JsonStateFile } from '@nestlab/service-kit';

export type ConfigureRequest = RequestOf<typeof Dom0Configure>;

export interface Persisted {
  readonly configure: ConfigureRequest;
  /** The last probe succeeded: a restarted dom0 probes again by itself. */
  readonly probed: boolean;
}

/** `<dir>/dom0-kernel.<stack>.json`; a file that does not parse is refused (SavedStateError). */
export class StateFile extends JsonStateFile<Persisted> {
  constructor(dir: string, stack: string) {
    super(join(dir, `dom0-kernel.${stack}.json`), checkPersisted);
  }
}

function checkPersisted(value: unknown): { state: Persisted } | { problem: string } {
  const v = value as { configure?: unknown; probed?: unknown } | null;
  if (typeof v !== 'object' || v === null) return { problem: 'is not an object' };
  if (!Dom0Configure.request.check(v.configure) || typeof v.probed !== 'boolean') {
    return { problem: 'does not hold a dom0 configuration' };
  }
  return { state: { configure: v.configure, probed: v.probed } };
}
