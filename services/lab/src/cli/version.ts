import { readFileSync } from 'node:fs';

/** `nestlab --version`: the lab package's version and the Node.js running it. */
export function versionLine(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version?: string;
  };
  return `nestlab ${pkg.version ?? 'unknown'} (node ${process.version})`;
}
