import { join } from 'node:path';

/**
 * Where L0 keeps the disk image of device `bdf` in stack `stack`:
 * `<dataDir>/<stack>-<bdf with : and . as ->.img`. The lab reads it back on
 * its own (experiment checkers), without asking L0.
 */
export function diskImagePath(dataDir: string, stack: string, bdf: string): string {
  return join(dataDir, `${stack}-${bdf.replace(/[:.]/g, '-')}.img`);
}
