import type { Bus } from '@nestlab/service-kit';

/** What the driver needs of the service's bus; tests pass a real Bus on a real NATS. */
export type BusPort = Pick<Bus, 'request' | 'publish'>;
