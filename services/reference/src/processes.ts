import { readdirSync, readFileSync } from 'node:fs';

/** Live processes whose command line contains every one of parts (tests check nothing is left behind). */
export function processesWith(...parts: string[]): number[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
        return parts.every((part) => cmd.includes(part));
      } catch {
        return false; // gone meanwhile
      }
    })
    .map(Number);
}
