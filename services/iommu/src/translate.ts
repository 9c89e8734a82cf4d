// The IOMMU's translation of one device access, as named crossings:
// 'iommuTranslate' through the page tables, 'iommuPassthrough' for the
// identity domain. A fault is logged and thrown; the access is not performed.
import {
  FRAME_MAX,
  PAGE_SHIFT,
  crossing,
  machineAddr,
  machineOfFrame,
  mfn,
  pageOffset,
  type BusAddr,
  type TranslationStep,
} from '@nestlab/addr';
import type { IommuMode } from '@nestlab/protocol';
import { IommuError } from './errors.js';
import type { FaultLog, FaultReason } from './faults.js';
import type { PageTables } from './page-table.js';

export const iommuTranslate = crossing({
  fn: 'iommuTranslate',
  from: 'bus',
  to: 'machine',
  by: 'iommu',
});
export const iommuPassthrough = crossing({
  fn: 'iommuPassthrough',
  from: 'bus',
  to: 'machine',
  by: 'identity',
});

export interface TranslateResult {
  readonly machine: bigint;
  readonly read: boolean;
  readonly write: boolean;
  readonly by: 'iommu' | 'identity';
}

export const pageOf = (iova: BusAddr) => Number(iova >> BigInt(PAGE_SHIFT));

/**
 * Translates or throws; `onStep` sees the step of a fault too, before the
 * throw. Without `onStep` (nothing records it) no step is built.
 */
export function translate(
  mode: IommuMode,
  tables: PageTables,
  faults: FaultLog,
  req: { bdf: string; iova: BusAddr; write: boolean },
  onStep: ((step: TranslationStep) => void) | null,
): TranslateResult {
  if (mode === 'off') throw new IommuError('IOMMU_OFF', 'the IOMMU is off; nothing translates');
  if (mode === 'passthrough') {
    const machine = machineAddr(req.iova);
    onStep?.(iommuPassthrough.ok(req.iova, machine).step);
    return { machine, read: true, write: true, by: 'identity' };
  }
  const entry = tables.lookup(req.bdf, pageOf(req.iova));
  const fault = (reason: FaultReason, why: string): never => {
    onStep?.(iommuTranslate.fail(req.iova, `${reason}: ${why}`).step);
    faults.record({ bdf: req.bdf, iova: `0x${req.iova.toString(16)}`, write: req.write, reason });
    throw new IommuError(
      reason,
      `${req.bdf} ${req.write ? 'write' : 'read'} at iova 0x${req.iova.toString(16)}: ${why}`,
    );
  };
  if (!entry) return fault('IOMMU_FAULT_NOT_PRESENT', 'no mapping');
  if (req.write ? !entry.write : !entry.read)
    return fault(
      'IOMMU_FAULT_PERMISSION',
      `page is ${entry.read ? 'read' : ''}${entry.write ? 'write' : ''}-only`,
    );
  const machine = machineOfFrame(mfn(entry.mfn), pageOffset(req.iova));
  onStep?.(iommuTranslate.ok(req.iova, machine).step);
  return { machine, read: entry.read, write: entry.write, by: 'iommu' };
}

const ADDR_LIMIT = 1n << 64n;

/** Checks a map/unmap range: page-aligned, inside 64 bits. Returns the first page number. */
export function firstPageOf(iova: BusAddr, pages: number): number {
  if (pageOffset(iova) !== 0)
    throw new IommuError('BAD_IOVA', `iova 0x${iova.toString(16)} is not page-aligned`);
  if (iova + (BigInt(pages) << BigInt(PAGE_SHIFT)) > ADDR_LIMIT)
    throw new IommuError('BAD_IOVA', `iova 0x${iova.toString(16)} + ${pages} pages wraps 2^64`);
  return pageOf(iova);
}

export function checkMfns(mfns: readonly number[]): void {
  const bad = mfns.find((m) => m > FRAME_MAX);
  if (bad !== undefined) throw new IommuError('BAD_MFN', `mfn ${bad} is beyond 2^64 bytes`);
}
