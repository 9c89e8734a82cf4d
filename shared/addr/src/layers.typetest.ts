// Compiled by `tsc` in build and typecheck: each @ts-expect-error must stay an
// error, or the build fails. This is the proof that layers do not mix.
import { busAddr, machineAddr, pseudoPhysAddr } from './address.js';
import type { BusAddr, MachineAddr, PseudoPhysAddr } from './layers.js';

declare function wantsBus(a: BusAddr): void;
declare function wantsMachine(a: MachineAddr): void;

export function layerMixingDoesNotCompile(): void {
  const pseudo: PseudoPhysAddr = pseudoPhysAddr(0x1000n);
  const machine: MachineAddr = machineAddr(0x70100000n);
  // @ts-expect-error a pseudo-physical address is not a bus address
  wantsBus(pseudo);
  // @ts-expect-error a machine address is not a bus address either
  wantsBus(machine);
  // @ts-expect-error a bus address is not a machine address
  wantsMachine(busAddr(0x1000n));
  // @ts-expect-error a raw bigint carries no layer
  wantsBus(0x1000n);
  wantsBus(busAddr(0x1000n));
}
