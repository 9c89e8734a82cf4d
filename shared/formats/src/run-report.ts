// A run's outcome and report: what `nestlab run --json` prints, and what a
// reference run on the real stack is compared with (services/reference).

/** What a scenario run can show, from the seed thread's matrix. */
export const OUTCOMES = [
  'ok',
  'misdirected-dma',
  'iommu-fault',
  'features-rejected',
  'isolation-bypass',
  'corruption',
  /**
   * Every I/O completed as far as the driver can tell, but the device moved
   * their data through frames another owner holds (a half fix: the rings
   * right, the buffers not). Judged by the oracle, verify on or off.
   */
  'silent-corruption',
  'timeout',
] as const;
export type Outcome = (typeof OUTCOMES)[number];

/** The `nestlab run --json` report (shape fixed by the stack issue; fields are only ever added). */
export interface RunReport {
  scenario: string;
  expected: Outcome;
  outcome: Outcome;
  pass: boolean;
  seed: number;
  ios: {
    submitted: number;
    completed: number;
    verified: number;
    corrupted: number;
    failed: number;
  };
  dma: {
    total: number;
    translated: number;
    bypassed: number;
    direct: number;
    misdirected: number;
    /** Accesses through a mapping already unmapped when they happened (stale IOTLB). */
    stale: number;
    faulted: number;
    intended: number;
    outside: number;
    /** Ring accesses in the device's own memory (rings in its BAR): no DMA, never faulted. */
    deviceLocal?: number;
  };
  features: { offered: string; negotiated: string };
  /**
   * Where the device sits and how the IOMMU treats it: its BDF, its bus
   * (segment:bus), the attachment (none, virtio, physical, virtio-exempt,
   * virtio-translated-bus) and the buses a per-bus virtio exemption covers.
   */
  device?: { bdf: string; bus: string; iommu: string; exemptBuses: string[] };
  driver: { ok: boolean; status: number; error: { code: string; message: string } | null };
  traceIds: string[];
  firstMisdirected: {
    bus: string;
    machine: string;
    owner: string;
    intendedMachine: string | null;
    pseudo: string | null;
    hostPhys: string | null;
    what: string;
    /** The trace holding this access (with batching, not always the first I/O's). */
    traceId: string | null;
  } | null;
  /**
   * Where misdirected accesses landed (absent when none did): each frame hit
   * with its owner (the first 64 by address; framesTotal counts all), accesses
   * per owner, and the reads whose sector the device wrote into such a frame.
   */
  astray?: {
    frames: { machine: string; owner: string; accesses: number }[];
    framesTotal: number;
    byOwner: Record<string, number>;
    reads: number;
  };
  rogue: { bus: string; verdict: string; machine: string | null; owner: string | null } | null;
  errors: Record<string, number>;
  latencyUs: { p50: number; p99: number };
  elapsedMs: number;
  /** The run was cancelled (console button, Ctrl-C): the job stopped submitting; never a pass. */
  cancelled?: boolean;
  explanation: string;
}
