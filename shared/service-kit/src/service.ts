import type { FastifyInstance } from 'fastify';
import type { Tracer } from '@opentelemetry/api';
import type { Logger } from 'pino';
import type { ServiceToken } from '@nestlab/protocol';
import type { Bus } from './bus.js';
import type { DomainFaults } from './faults/domain.js';
import type { ServiceConfig } from './config.js';
import type { MetricsRegistry } from './metrics.js';

/** What a service's app gets to work with. */
export interface ServiceContext {
  readonly config: ServiceConfig;
  readonly bus: Bus;
  readonly log: Logger;
  readonly metrics: MetricsRegistry;
  readonly tracer: Tracer;
  /** Where the service declares the domain faults it owns (`faults.on(kind, handler)`). */
  readonly faults: DomainFaults;
}

/** A service, as its app.ts defines it; service-kit runs it. */
export interface ServiceModule {
  /** Folder name under services/, also the OTel service.name. */
  readonly name: string;
  /** Subject token (`nestlab.<stack>.<token>.…`). */
  readonly token: ServiceToken;
  readonly defaultAdminPort: number;
  /** Subscribes handlers and sets up state; the service is ready once this resolves. */
  start(ctx: ServiceContext): Promise<void> | void;
  /** What `/state` shows. */
  state?(): unknown;
  /** Extra admin routes. */
  routes?(app: FastifyInstance): void;
  /** Called on shutdown before NATS drains. */
  stop?(): Promise<void> | void;
}
