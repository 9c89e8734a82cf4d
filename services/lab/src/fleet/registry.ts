import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { NatsCredential } from '@nestlab/nats-runner';

/** Where a running `nestlab up` announces itself, so `run`, `matrix` and `trace` find it. */
export interface FleetRecord {
  natsUrl: string;
  stack: string;
  consoleUrl: string;
  pid: number;
  /** The lab's NATS seat when the fleet runs with per-service users (the file is then 0600). */
  labAuth?: NatsCredential;
}

export const fleetFile = () =>
  process.env['NESTLAB_FLEET_FILE'] ?? join(process.cwd(), '.nestlab', 'fleet.json');

export function announceFleet(rec: FleetRecord): void {
  mkdirSync(dirname(fleetFile()), { recursive: true });
  writeFileSync(fleetFile(), `${JSON.stringify(rec)}\n`, { mode: 0o600 });
  chmodSync(fleetFile(), 0o600); // an older file keeps its mode on overwrite
}

export function withdrawFleet(): void {
  rmSync(fleetFile(), { force: true });
}

/** The running fleet, if its launcher is still alive. */
export function runningFleet(): FleetRecord | null {
  try {
    const rec = JSON.parse(readFileSync(fleetFile(), 'utf8')) as FleetRecord;
    process.kill(rec.pid, 0);
    return rec;
  } catch {
    return null;
  }
}
