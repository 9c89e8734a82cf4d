// What dom0 keeps across its own crash (SIGKILL + respawn with the same env):
// its last Dom0Configure and whether it had probed the device. A real kernel
// would boot with the same command line and probe again; the lab does not
// re-send stack.configure after a restart. Written atomically (tmp + rename),
// so a crash mid-write leaves the previous file.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Dom0Configure, type RequestOf } from '@nestlab/protocol';

export type ConfigureRequest = RequestOf<typeof Dom0Configure>;

export interface Persisted {
  readonly configure: ConfigureRequest;
  /** The last probe succeeded: a restarted dom0 probes again by itself. */
  readonly probed: boolean;
}

export class StateFile {
  readonly path: string;

  constructor(dir: string, stack: string) {
    this.path = join(dir, `dom0-kernel.${stack}.json`);
  }

  /** The persisted state, or null when there is none or it does not parse (it is then ignored). */
  async load(): Promise<{ state: Persisted | null; problem: string | null }> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { state: null, problem: null };
      return { state: null, problem: `cannot read ${this.path}: ${(err as Error).message}` };
    }
    try {
      const v = JSON.parse(text) as { configure?: unknown; probed?: unknown };
      if (!Dom0Configure.request.check(v.configure) || typeof v.probed !== 'boolean') {
        return { state: null, problem: `${this.path} does not hold a dom0 configuration` };
      }
      return { state: { configure: v.configure, probed: v.probed }, problem: null };
    } catch (err) {
      return { state: null, problem: `${this.path} is not JSON: ${(err as Error).message}` };
    }
  }

  /** Writes are serialized so an older state never lands after a newer one. */
  private chain: Promise<void> = Promise.resolve();

  save(state: Persisted): Promise<void> {
    const run = this.chain.then(async () => {
      await mkdir(join(this.path, '..'), { recursive: true });
      const tmp = `${this.path}.${process.pid}.tmp`;
      await writeFile(tmp, JSON.stringify(state));
      await rename(tmp, this.path);
    });
    this.chain = run.catch(() => undefined);
    return run;
  }
}
