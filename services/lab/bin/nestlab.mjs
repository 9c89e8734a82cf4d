#!/usr/bin/env node
// The `nestlab` command. It lives outside dist/ so that npm links it at
// install time, before the first build has produced dist/cli.js.
import { existsSync } from 'node:fs';

const cli = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write('nestlab: not built yet — run `npm run setup` (or `npm run build`) first\n');
  process.exit(2);
}
await import(cli.href);
