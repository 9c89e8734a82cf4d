import { Type, type Static } from '@sinclair/typebox';
import { DomainFaultRequest, FaultRule, MAX_HISTORY, Obj, Workload } from '@nestlab/protocol';

const Id = Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,63}$' });
const Token = Type.Union([
  Type.Literal('l0'),
  Type.Literal('xen'),
  Type.Literal('dom0'),
  Type.Literal('iommu'),
]);
const Count = Type.Integer({ minimum: 0, maximum: 10_000_000 });

/** A logical point of the run: after the Nth I/O of the main job completed (0: before it starts). */
const At = Obj({ completed: Count });

/** Kill one service (or nats-server) with SIGKILL, wait `downMs`, start it again. */
export const CrashStep = Obj({
  at: At,
  crash: Type.Union([Token, Type.Literal('nats')]),
  downMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 60_000 })),
});
/** A transport fault plan (the rules of `nestlab faults add`) for the given services. */
export const TransportStep = Obj({
  at: At,
  transport: Type.Array(FaultRule, { minItems: 1, maxItems: 32 }),
  /** Services whose receive path applies the rules; default all four. */
  services: Type.Optional(Type.Array(Token, { minItems: 1, uniqueItems: true })),
});
/** A domain fault armed on the service that owns the state (FaultControl[svc].inject). */
export const DomainStep = Obj({
  at: At,
  domain: Obj({ service: Token, ...DomainFaultRequest.properties }),
});
export const FaultStep = Type.Union([CrashStep, TransportStep, DomainStep]);
export type FaultStep = Static<typeof FaultStep>;

/** `0`, `3`, `any`, `null`, or a comparison such as `>0`, `>=1`, `<5`, `==2`. */
export const Expectation = Type.Union([
  Count,
  Type.Null(),
  Type.String({ pattern: '^(any|(>|>=|<|<=|==)[0-9]{1,9})$' }),
]);
export type Expectation = Static<typeof Expectation>;

export const EXPECT_KEYS = [
  'lostAckedWrites',
  'silentCorruptions',
  'unendedIos',
  'detectedCorruptions',
  'recoveryMs',
  /** Device accesses the IOMMU refused during the run (DMA log verdict `faulted`). */
  'iommuFaults',
  /**
   * Device accesses the oracle judged `stale`: through a translation whose
   * unmap the driver had already had acknowledged (a stale IOTLB entry).
   */
  'staleAccesses',
  /** Device accesses that hit a frame no live or past mapping of their bus address meant. */
  'misdirectedAccesses',
  /** I/Os that ended with an error (any code). */
  'failedIos',
  /** Domain faults the services reported as fired. */
  'domainFaultsFired',
] as const;
export type ExpectKey = (typeof EXPECT_KEYS)[number];

/**
 * An experiment: a shipped scenario's stack, a workload, a fault schedule at
 * logical points, and the checker verdicts the run must show.
 */
export const ExperimentFile = Obj({
  id: Id,
  title: Type.String({ minLength: 1, maxLength: 120 }),
  description: Type.String({ minLength: 1 }),
  /** The scenario whose stack configuration is used (e.g. xen-pv-dom0-dma-api). */
  scenario: Id,
  /** Seeds the layout, the workload and the transport fault plan; `--seed` overrides. */
  seed: Type.Optional(Type.Integer({ minimum: 0, maximum: 0xffffffff })),
  workload: Type.Optional(
    Obj({
      // JobRun's workload fields and limits; ios is bounded by the history experiments keep.
      ...Type.Partial(Type.Pick(Workload, ['iodepth', 'bs', 'rw', 'fsyncEvery', 'deadlineMs']))
        .properties,
      ios: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_HISTORY })),
      /** Blocks of the disk the workload touches (small: blocks are rewritten, all are read back). */
      blocks: Type.Optional(Type.Integer({ minimum: 1, maximum: 4096 })),
    }),
  ),
  /** Extra environment for every service process (tests use it for broken variants). */
  env: Type.Optional(
    Type.Record(Type.String({ pattern: '^[A-Z][A-Z0-9_]{0,63}$' }), Type.String()),
  ),
  faults: Type.Array(FaultStep, { maxItems: 32 }),
  /** Verdicts the run must show; a checker left out is not judged. */
  expect: Obj({
    lostAckedWrites: Type.Optional(Expectation),
    silentCorruptions: Type.Optional(Expectation),
    unendedIos: Type.Optional(Expectation),
    detectedCorruptions: Type.Optional(Expectation),
    recoveryMs: Type.Optional(Expectation),
    iommuFaults: Type.Optional(Expectation),
    staleAccesses: Type.Optional(Expectation),
    misdirectedAccesses: Type.Optional(Expectation),
    failedIos: Type.Optional(Expectation),
    domainFaultsFired: Type.Optional(Expectation),
  }),
});
export type ExperimentFile = Static<typeof ExperimentFile>;
