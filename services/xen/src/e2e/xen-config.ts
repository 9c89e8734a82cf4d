// The machine the Xen e2e suites configure: 2 GiB, 1 GiB of it dom0's, one
// passthrough device.
import type { RequestOf, XenConfigure } from '@nestlab/protocol';

export const BDF = '0000:00:04.0';
export const GIB = 2 ** 30;

export const xenConfig = (seed: number): RequestOf<typeof XenConfigure> => ({
  present: true,
  machineBytes: 2 * GIB,
  dom0Bytes: GIB,
  seed,
  passthrough: [BDF],
});
