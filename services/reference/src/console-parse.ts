/** Key/value facts the guest printed as `NESTLAB k=v …` lines (a `dmesg=` value runs to the line's end). */
export type GuestFacts = Map<string, string>;

export function parseGuestLines(lines: readonly string[]): GuestFacts {
  const facts: GuestFacts = new Map();
  for (const line of lines) {
    const at = line.indexOf('NESTLAB ');
    if (at < 0) continue;
    let rest = line.slice(at + 'NESTLAB '.length).trim();
    while (rest) {
      const m = /^([a-z][\w.]*)=/.exec(rest);
      if (!m?.[1]) break;
      const key = m[1];
      rest = rest.slice(m[0].length);
      if (key === 'dmesg') {
        facts.set(key, [facts.get(key), rest].filter(Boolean).join('\n'));
        break;
      }
      const sp = rest.search(/\s/);
      const value = sp < 0 ? rest : rest.slice(0, sp);
      rest = sp < 0 ? '' : rest.slice(sp).trimStart();
      facts.set(key, value);
    }
  }
  return facts;
}

/** Linux's /sys/bus/virtio/devices/X/features: one '0'/'1' per bit, bit 0 first. */
export function sysfsFeaturesToHex(bits: string): string | null {
  if (!/^[01]+$/.test(bits)) return null;
  let v = 0n;
  for (let i = 0; i < bits.length; i++) if (bits[i] === '1') v |= 1n << BigInt(i);
  return `0x${v.toString(16)}`;
}

/** Xen's boot log line `Dom0 alloc.:   0000000070000000->0000000078000000`. */
export function dom0MachineRange(lines: readonly string[]): { start: string; end: string } | null {
  for (const l of lines) {
    const m = /Dom0 alloc\.:\s+([0-9a-f]+)->([0-9a-f]+)/i.exec(l);
    if (m?.[1] && m[2]) return { start: hex(BigInt(`0x${m[1]}`)), end: hex(BigInt(`0x${m[2]}`)) };
  }
  return null;
}

export const hex = (v: bigint): string => `0x${v.toString(16)}`;

export function num(facts: GuestFacts, key: string): number | null {
  const v = facts.get(key);
  return v !== undefined && /^\d+$/.test(v) ? Number(v) : null;
}
