// A DMA log record for oracle tests: a 16-byte direct read at 0, as overridden.
import type { DmaRecord } from '@nestlab/protocol';

export const rec = (over: Partial<DmaRecord>): DmaRecord => ({
  seq: 0,
  bdf: '0000:00:04.0',
  what: 'buffer',
  write: false,
  bus: '0x0',
  len: 16,
  machine: '0x0',
  hostPhys: '0x0',
  verdict: 'direct',
  ...over,
});
