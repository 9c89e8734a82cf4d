#!/usr/bin/env node
// The `nestlab` command. It lives outside dist/ so that npm links it at
// install time, before the first build has produced dist/cli.js.
// Started by a Node older than the repo's engines (a system Node 20, say), it
// runs itself again on the project's Node, which deploy/setup.sh installs in
// .nestlab/node/, so the CLI and every service it spawns (process.execPath)
// run on the Node the project supports.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { delimiter, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = new URL('../../../', import.meta.url);

/** The repo's `engines.node` minimum (">=X.Y.Z"), or undefined outside the nestlab repo. */
function minimumNode() {
  try {
    const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8'));
    if (pkg.name !== 'nestlab') return undefined;
    return /^>=\s*(\d+(?:\.\d+){0,2})$/.exec(pkg.engines?.node ?? '')?.[1];
  } catch {
    return undefined;
  }
}

function older(version, min) {
  const a = version.split('.').map(Number);
  const b = min.split('.').map(Number);
  for (let i = 0; i < 3; i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) < (b[i] ?? 0);
  return false;
}

function runOnProjectNode(min) {
  const node = fileURLToPath(new URL('.nestlab/node/bin/node', root));
  // NESTLAB_REEXEC: the project's Node was tried already; never loop.
  if (process.env.NESTLAB_REEXEC || !existsSync(node)) {
    process.stderr.write(
      `nestlab: needs Node.js >=${min}, this is ${process.version}` +
        (process.env.NESTLAB_REEXEC ? ` (run as ${node})` : '') +
        '; run `npm run setup` (deploy/setup.sh installs one in .nestlab/node)\n',
    );
    process.exit(2);
  }
  const env = {
    ...process.env,
    NESTLAB_REEXEC: '1',
    PATH: `${dirname(node)}${delimiter}${process.env.PATH ?? ''}`,
  };
  const args = [...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)];
  const child = spawn(node, args, { stdio: 'inherit', env });
  // Ctrl-C reaches the child from the terminal (same process group): only
  // stay alive for it; other signals are passed on.
  const forward = (sig) => child.kill(sig);
  process.on('SIGINT', () => {});
  process.on('SIGTERM', forward);
  process.on('SIGHUP', forward);
  child.on('error', (e) => {
    process.stderr.write(`nestlab: cannot start ${node}: ${e.message}\n`);
    process.exit(2);
  });
  child.on('exit', (code, signal) => {
    if (!signal) process.exit(code ?? 1);
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
  });
}

const min = minimumNode();
if (min && older(process.versions.node, min)) {
  runOnProjectNode(min);
} else {
  const cli = new URL('../dist/cli.js', import.meta.url);
  if (!existsSync(cli)) {
    process.stderr.write(
      'nestlab: not built yet — run `npm run setup` (or `npm run build`) first\n',
    );
    process.exit(2);
  }
  await import(cli.href);
}
