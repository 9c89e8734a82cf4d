import { GuestRam } from './guest-ram.js';
import { Memslots } from './memslots.js';
import type { RamFile } from './ram-file.js';

/** L0's guest-physical memory as a whole: the RAM backing and the memslots that map it. */
export class MachineMemory {
  readonly ram = new GuestRam();
  memslots: Memslots;
  /** CPU accesses queue behind this while a message's ops wait for a register write. */
  cpuHold: Promise<void> | null = null;

  constructor(ramBytes: bigint) {
    this.memslots = new Memslots(ramBytes);
  }

  /**
   * A new run: memslots rebuilt for the new size, RAM emptied — unless
   * `restored`, where `file` holds the memory of the run L0 crashed in.
   */
  reset(memslots: Memslots, file: RamFile | null = null, restored = false): void {
    this.ram.attach(file, restored);
    this.memslots = memslots;
  }

  stats() {
    return {
      ramBytes: Number(this.memslots.ramBytes),
      touchedPages: this.ram.touchedPages,
      touchedBytes: this.ram.touchedBytes,
      backing: this.ram.backing,
      memslots: this.memslots.slots.map((s) => ({
        machine: `0x${s.machine.toString(16)}`,
        hostPhys: `0x${s.hostPhys.toString(16)}`,
        bytes: Number(s.bytes),
      })),
    };
  }
}
