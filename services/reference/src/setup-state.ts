import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ReferenceError } from './errors.js';

/** The package root (holds setup.sh and guest/), from dist/ or src/. */
export const PACKAGE_ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
export const SETUP_SCRIPT = join(PACKAGE_ROOT, 'setup.sh');
export const GUEST_DIR = join(PACKAGE_ROOT, 'guest');
const MODULE_FILES = [
  'Kbuild',
  'Makefile',
  'nestlab_main.c',
  'nestlab_transport.c',
  'nestlab_vblk.h',
];

/** What `nestlab reference --setup` installed and built (its setup.json). */
export interface SetupState {
  kernelVersion: string;
  vmlinuz: string;
  modulesDir: string;
  xen: string;
  module: string;
  moduleSourceSha256: string;
  busybox: string;
  qemu: string;
  qemuVersion: string;
}

/** The cache for built artifacts: $NESTLAB_REFERENCE_DIR or ./.nestlab/reference. */
export function referenceDir(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): string {
  return resolve(env['NESTLAB_REFERENCE_DIR'] ?? join(cwd, '.nestlab', 'reference'));
}

const SETUP_HINT = 'run `nestlab reference --setup` first';

/** Loads the setup manifest and checks every file it names; never installs anything. */
export function loadSetup(dir = referenceDir()): SetupState {
  const manifest = join(dir, 'setup.json');
  if (!existsSync(manifest)) {
    throw new ReferenceError(
      'SETUP_NEEDED',
      'environment',
      `reference mode is not set up in ${dir}: ${SETUP_HINT}`,
    );
  }
  let state: SetupState;
  try {
    state = JSON.parse(readFileSync(manifest, 'utf8')) as SetupState;
  } catch (cause) {
    throw new ReferenceError(
      'SETUP_NEEDED',
      'environment',
      `${manifest} is unreadable: ${SETUP_HINT}`,
      { cause },
    );
  }
  for (const key of ['vmlinuz', 'modulesDir', 'xen', 'module', 'busybox', 'qemu'] as const) {
    if (typeof state[key] !== 'string' || !existsSync(state[key])) {
      throw new ReferenceError(
        'SETUP_NEEDED',
        'environment',
        `${key} (${String(state[key])}) is missing: ${SETUP_HINT}`,
      );
    }
  }
  if (state.moduleSourceSha256 !== moduleSourceHash()) {
    throw new ReferenceError(
      'SETUP_NEEDED',
      'environment',
      `the module sources changed since the last setup: ${SETUP_HINT}`,
    );
  }
  return state;
}

/** Same digest as setup.sh: sha256 over the module files, concatenated in a fixed order. */
export function moduleSourceHash(): string {
  const h = createHash('sha256');
  for (const f of MODULE_FILES) h.update(readFileSync(join(GUEST_DIR, 'module', f)));
  return h.digest('hex');
}
