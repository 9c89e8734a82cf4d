import { addrOf } from './address.js';
import { AddrError } from './errors.js';
import type { Layer, LayerAddr } from './layers.js';

const HEX = /^0x[0-9a-fA-F]{1,16}$/;

/** Addresses travel as `0x…` strings on the wire and in span attributes. */
export const toHex = (v: bigint | number): string => `0x${v.toString(16)}`;

export function parseHex<L extends Layer>(layer: L, text: string): LayerAddr[L] {
  if (!HEX.test(text)) {
    throw new AddrError(
      'ADDR_BAD_HEX',
      `${layer} address ${JSON.stringify(text)} is not 0x<1-16 hex digits>`,
    );
  }
  return addrOf(layer, BigInt(text));
}

export const isHexAddr = (text: string): boolean => HEX.test(text);
