// The DMA engine's memory when a vhost-user front-end owns guest RAM: the
// current memory table (SET_MEM_TABLE replaces it) as memslots and as RAM.
import type { HostPhysAddr, MachineAddr } from '@nestlab/addr';
import type { DmaMemory } from '../dma/dma-engine.js';
import { VhostMemoryTable } from './memory-table.js';

export class FrontEndRam implements DmaMemory {
  table = new VhostMemoryTable([], []);

  readonly memslots = {
    translate: (addr: MachineAddr, len: number) => this.table.translate(addr, len),
    hostOf: (addr: MachineAddr, len: number): HostPhysAddr | null => {
      const t = this.table.translate(addr, len);
      return t.ok ? t.addr : null;
    },
    covers: (addr: bigint, len: number) => this.table.covers(addr, len),
  };

  readonly ram = {
    write: (addr: HostPhysAddr, bytes: Uint8Array) => this.table.write(addr, bytes),
    readInto: (addr: HostPhysAddr, len: number, out: Uint8Array, at: number) =>
      this.table.readInto(addr, len, out, at),
  };

  /** A new table from the front-end; the old one's fds are closed. */
  replace(table: VhostMemoryTable): void {
    this.table.close();
    this.table = table;
  }

  close(): void {
    this.table.close();
  }
}
