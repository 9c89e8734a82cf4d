import { Type } from '@sinclair/typebox';
import { Obj } from '../schema-kit.js';

/** PCI address dddd:bb:ss.f, as it appears in heads (subjects use deviceToken()). */
export const Bdf = Type.String({ pattern: '^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\\.[0-7]$' });
/** Xen domain id: 0 is dom0; 0x7ff0 (DOMID_XEN) stands for the hypervisor itself. */
export const DomId = Type.Integer({ minimum: 0, maximum: 0x7ff0 });
export const DOMID_XEN = 0x7ff0;
/** Feature bits as a 64-bit hex string. */
export const FeatureBits = Type.String({ pattern: '^0x[0-9a-fA-F]{1,16}$' });
export const Empty = Obj({});
/** Who owns a machine frame, as Xen's frame table says. */
export const FrameOwner = Type.Union([
  Type.Literal('xen'),
  Type.Literal('free'),
  Type.String({ pattern: '^dom[0-9]+$' }),
  Type.Literal('none'),
]);

/**
 * Milliseconds on a clock every service on one host shares: the kernel's
 * monotonic clock (containers on the host share it too), with sub-millisecond
 * precision. It lets the oracle order a device access against a mapping's
 * lifetime, which L0 and dom0 record in different processes. Not the wall
 * clock: a process's `performance.timeOrigin` is the wall clock at its start,
 * so a step of the wall clock between two services' starts (a VM's clock being
 * corrected) would offset one service's times against the other's for its life.
 */
export function sharedClockMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** A time on sharedClockMs(). */
export const ClockMs = Type.Number({ minimum: 0 });
