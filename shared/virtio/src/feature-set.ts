import { VIRTIO_BLK_F, VIRTIO_F, VIRTIO_F_PROPOSAL_2014 } from './constants.js';
import { VirtioError } from './errors.js';

const MAX_BIT = 63;
const ALL = (1n << 64n) - 1n;
const HEX = /^0x[0-9a-fA-F]{1,16}$/;

function checkBit(bit: number): bigint {
  if (!Number.isInteger(bit) || bit < 0 || bit > MAX_BIT) {
    throw new VirtioError('INVALID_ARGUMENT', `feature bit ${bit} is not in 0..63`);
  }
  return 1n << BigInt(bit);
}

const invert = (o: Record<string, number>): ReadonlyMap<number, string> =>
  new Map(Object.entries(o).map(([name, bit]) => [bit, name]));

/** Names of the device-independent bits (24..40), with the never-standardized 2014 bit 25. */
export const COMMON_FEATURE_NAMES = invert({ ...VIRTIO_F, ...VIRTIO_F_PROPOSAL_2014 });
/** Names of the virtio-blk bits 0..23, which other device types reuse for other meanings. */
export const BLK_FEATURE_NAMES = invert(VIRTIO_BLK_F);

/**
 * An immutable 64-bit feature set. Features travel as hex (on the wire and in
 * span attributes) and are offered/accepted 32 bits at a time (feature_select).
 */
export class FeatureSet {
  static readonly EMPTY = new FeatureSet(0n);

  private constructor(readonly bits: bigint) {}

  static fromBits(bits: bigint): FeatureSet {
    if (bits < 0n || bits > ALL) {
      throw new VirtioError('INVALID_ARGUMENT', `feature bits ${bits} do not fit in 64 bits`);
    }
    return new FeatureSet(bits);
  }

  static of(...bits: number[]): FeatureSet {
    return new FeatureSet(bits.reduce((acc, b) => acc | checkBit(b), 0n));
  }

  static parseHex(text: string): FeatureSet {
    if (!HEX.test(text)) {
      throw new VirtioError('INVALID_ARGUMENT', `features ${JSON.stringify(text)} are not 0x<hex>`);
    }
    return new FeatureSet(BigInt(text));
  }

  /** Builds a set from the two 32-bit halves read through feature_select 0 and 1. */
  static fromWords(low: number, high: number): FeatureSet {
    return new FeatureSet((BigInt(high >>> 0) << 32n) | BigInt(low >>> 0));
  }

  has(bit: number): boolean {
    return (this.bits & checkBit(bit)) !== 0n;
  }

  with(...bits: number[]): FeatureSet {
    return new FeatureSet(bits.reduce((acc, b) => acc | checkBit(b), this.bits));
  }

  without(...bits: number[]): FeatureSet {
    return new FeatureSet(bits.reduce((acc, b) => acc & ~checkBit(b), this.bits));
  }

  intersect(other: FeatureSet): FeatureSet {
    return new FeatureSet(this.bits & other.bits);
  }

  /** True when every bit of this set is also in `other` (a driver may only accept offered bits). */
  isSubsetOf(other: FeatureSet): boolean {
    return (this.bits & ~other.bits) === 0n;
  }

  /** The 32-bit half selected by device_feature_select / driver_feature_select. */
  word(select: number): number {
    if (select !== 0 && select !== 1) return 0; // a 64-bit set has no bits above select 1
    return Number((this.bits >> BigInt(32 * select)) & 0xffffffffn);
  }

  list(): number[] {
    const out: number[] = [];
    for (let b = 0; b <= MAX_BIT; b++) if ((this.bits >> BigInt(b)) & 1n) out.push(b);
    return out;
  }

  /** Names bits with the common table plus a device table (default virtio-blk); unknown bits read `bit<n>`. */
  names(deviceNames: ReadonlyMap<number, string> = BLK_FEATURE_NAMES): string[] {
    return this.list().map((b) => {
      const table = b < 24 ? deviceNames : COMMON_FEATURE_NAMES;
      return table.get(b) ?? `bit${b}`;
    });
  }

  toHex(): string {
    return `0x${this.bits.toString(16)}`;
  }

  equals(other: FeatureSet): boolean {
    return this.bits === other.bits;
  }

  toString(): string {
    return `${this.toHex()} [${this.names().join(' ')}]`;
  }
}
