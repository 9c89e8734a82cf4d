import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { watchedChild } from '@nestlab/service-kit';
import type { FleetService } from './services.js';

export interface ServiceProcess {
  readonly service: FleetService;
  readonly adminUrl: string;
  readonly logFile: string;
  readonly process: ChildProcess;
  /** Resolves with the exit code (or signal name) once the process has ended. */
  readonly exited: Promise<number | string>;
  /** The last lines the service wrote to stderr, for error messages. */
  stderrTail(): string;
}

export function spawnService(
  service: FleetService,
  env: NodeJS.ProcessEnv,
  adminPort: number,
  logDir: string,
  nodeArgs: readonly string[] = [],
): ServiceProcess {
  const logFile = join(logDir, `${service.name}.log`);
  const log = createWriteStream(logFile, { flags: 'a' });
  // The service exits by itself when the lab dies, even by SIGKILL (parent-watch.ts).
  const watch = watchedChild({ ...env, ADMIN_PORT: String(adminPort), ADMIN_HOST: '127.0.0.1' });
  const child = spawn(process.execPath, [...nodeArgs, service.entry], {
    env: watch.env,
    stdio: [watch.stdin, 'pipe', 'pipe'],
  });
  let tail = '';
  child.stdout?.pipe(log, { end: false });
  child.stderr?.on('data', (chunk: Buffer) => {
    log.write(chunk);
    tail = (tail + chunk.toString('utf8')).slice(-2000);
  });
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      log.end();
      resolve(code ?? signal ?? 'unknown');
    });
  });
  return {
    service,
    adminUrl: `http://127.0.0.1:${adminPort}`,
    logFile,
    process: child,
    exited,
    stderrTail: () => tail.trim(),
  };
}

/** SIGTERM, then SIGKILL after a grace period; resolves with how it ended. */
export async function stopProcess(p: ServiceProcess, graceMs = 5000): Promise<number | string> {
  if (p.process.exitCode === null && p.process.signalCode === null) p.process.kill('SIGTERM');
  const timer = setTimeout(() => p.process.kill('SIGKILL'), graceMs);
  const how = await p.exited;
  clearTimeout(timer);
  return how;
}
