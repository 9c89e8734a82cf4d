import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/nats-core';
import { FaultControl, Ping, inboxPrefix } from '@nestlab/protocol';
import { startTelemetry } from '@nestlab/telemetry';
import { createLogger } from './log.js';
import { buildAdminApp } from './admin.js';
import { Bus } from './bus.js';
import { DomainFaults } from './faults/domain.js';
import { isConfigError, loadConfig, type ServiceConfig } from './config.js';
import { MetricsRegistry } from './metrics.js';
import { exitIfAlreadyRunning } from './presence.js';
import { watchParent } from './parent-watch.js';
import type { ServiceContext, ServiceModule } from './service.js';

export interface RunningService {
  readonly config: ServiceConfig;
  readonly adminUrl: string;
  readonly nc: NatsConnection;
  stop(): Promise<void>;
}

/**
 * Runs a service as a process: config from env, telemetry first, NATS with
 * endless reconnect, admin server, signal handling. A bad variable (of the
 * kit, telemetry or the service's own, read in `start`) stops startup with
 * one line on stderr and exit code 2.
 */
export async function runService(mod: ServiceModule): Promise<RunningService> {
  const config = orExit2(mod.name, () => loadConfig(mod.name, mod.defaultAdminPort));
  const telemetry = orExit2(mod.name, () =>
    startTelemetry({ serviceName: mod.name, stack: config.stack }),
  );
  const log = createLogger(mod.name, config.logLevel, { stack: config.stack });
  // Started by the lab: leave when it dies, however it dies (even mid-startup).
  const onParentGone: { stop?: () => Promise<void> } = {};
  watchParent(() => onParentGone.stop?.() ?? Promise.resolve());
  const metrics = new MetricsRegistry({ stack: config.stack, defaults: true });
  const started = Date.now();

  const inbox = inboxPrefix(config.stack, mod.token);
  // The first connection is retried too (waitOnFirstConnect): in compose the
  // server may come up after us.
  log.info({ nats: config.natsUrl }, 'connecting to NATS');
  const nc = await connect({
    servers: config.natsUrl.split(','),
    name: `${config.service}@${config.stack}`,
    waitOnFirstConnect: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    inboxPrefix: inbox,
    ...(config.natsUser ? { user: config.natsUser, pass: config.natsPass } : {}),
  });
  let natsUp = true;
  let serviceReady = false;
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') natsUp = false;
      if (s.type === 'reconnect') natsUp = true;
      if (s.type === 'disconnect' || s.type === 'reconnect')
        log.warn({ status: s.type }, 'nats connection changed');
    }
  })();

  const bus = new Bus(nc, config.stack, telemetry.tracer, log, metrics, inbox);
  const faults = new DomainFaults(mod.name);
  const ctx: ServiceContext = { config, bus, log, metrics, tracer: telemetry.tracer, faults };
  await exitIfAlreadyRunning(bus, mod.token, mod.name, config.stack);
  bus.handle(Ping[mod.token], () => ({
    body: {
      service: mod.token,
      stack: config.stack,
      pid: process.pid,
      uptimeMs: Date.now() - started,
      ready: serviceReady,
    },
  }));

  // Every service takes a transport-fault plan at run time (nestlab faults).
  if (mod.token !== 'lab') {
    const control = FaultControl[mod.token];
    bus.handle(control.set, ({ head }) => {
      bus.faults.set(head);
      log.warn({ rules: head.rules.length, seed: head.seed }, 'fault plan set');
      return { body: { rules: head.rules.length } };
    });
    bus.handle(control.list, () => ({
      body: { ...bus.faults.snapshot(), domain: faults.events() },
    }));
    bus.handle(control.inject, async ({ head }) => {
      const armed = await faults.arm(head);
      log.warn({ kind: head.kind, count: head.count ?? 1, armed }, 'domain fault armed');
      return { body: { armed } };
    });
  }

  const admin = buildAdminApp({
    service: mod.name,
    metrics,
    readiness: () => ({ ready: natsUp && serviceReady, nats: natsUp, started: serviceReady }),
    state: () => ({
      service: mod.name,
      stack: config.stack,
      ...((mod.state?.() as object | undefined) ?? {}),
    }),
    ...(mod.routes ? { routes: (app) => mod.routes?.(app) } : {}),
  });
  // A service's own environment (NESTLAB_DATA_DIR, its switches) is read in start.
  try {
    await mod.start(ctx);
  } catch (err) {
    if (isConfigError(err)) exitBadConfig(mod.name, err);
    throw err;
  }
  await nc.flush();
  serviceReady = true;
  const address = await admin.listen({ host: config.adminHost, port: config.adminPort });
  log.info({ admin: address, nats: config.natsUrl }, 'ready');

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      serviceReady = false;
      log.info('shutting down');
      await mod.stop?.();
      await bus.close();
      await nc.drain().catch(() => undefined);
      await admin.close();
      await telemetry.shutdown().catch(() => undefined);
    })());
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.once(sig, () => {
      void stop().then(
        () => process.exit(0),
        (err: unknown) => {
          log.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
    });
  }
  onParentGone.stop = stop;
  return { config, adminUrl: address, nc, stop };
}

/** One line on stderr naming the variable, exit code 2: the operator's mistake, not a crash. */
function exitBadConfig(service: string, err: Error): never {
  process.stderr.write(`${service}: invalid configuration: ${err.message}\n`);
  process.exit(2);
}

function orExit2<T>(service: string, read: () => T): T {
  try {
    return read();
  } catch (err) {
    if (isConfigError(err)) exitBadConfig(service, err);
    throw err;
  }
}
