// Machine (= L0 guest-physical) memory as L0 lays it out, in 4 KiB frames.
// Fixed decision shared with L0: memslot 0 = [0, min(ram, 3 GiB)), a PCI hole
// [3 GiB, 4 GiB) where BARs live, memslot 1 = [4 GiB, 4 GiB + ram - 3 GiB).

export const FRAME_BYTES = 4096;
export const MIB_FRAMES = 256;
export const GIB_FRAMES = 256 * 1024;
const HOLE_FIRST = 3 * GIB_FRAMES;
const HOLE_END = 4 * GIB_FRAMES;

/** A run of frames [first, first + count). */
export interface FrameRun {
  readonly first: number;
  readonly count: number;
}

export const runEnd = (r: FrameRun) => r.first + r.count;

/** The RAM runs of a machine with `ramFrames` frames, ascending. */
export function ramRuns(ramFrames: number): FrameRun[] {
  if (ramFrames <= HOLE_FIRST) return [{ first: 0, count: ramFrames }];
  return [
    { first: 0, count: HOLE_FIRST },
    { first: HOLE_END, count: ramFrames - HOLE_FIRST },
  ];
}

/** One past the highest machine frame that is RAM. */
export function ramTop(ramFrames: number): number {
  const runs = ramRuns(ramFrames);
  const last = runs[runs.length - 1];
  return last ? runEnd(last) : 0;
}

export const alignDown = (v: number, a: number) => Math.floor(v / a) * a;
export const alignUp = (v: number, a: number) => Math.ceil(v / a) * a;
