import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Dom0Error } from '../errors.js';
import { parseMmioDevice } from './mmio.js';

describe('virtio_mmio.device=<size>@<base>:<irq>', () => {
  it('reads size (hex, decimal, K/M suffix), base and line as Linux does', () => {
    assert.deepEqual(parseMmioDevice('0x200@0xfeb00000:5'), {
      base: 0xfeb0_0000n,
      bytes: 0x200,
      irq: 5,
    });
    assert.equal(parseMmioDevice('4K@0x10000000:12').bytes, 4096);
    assert.equal(parseMmioDevice('1M@0x10000000:12').bytes, 1 << 20);
    assert.equal(parseMmioDevice('512@0x1000:0').bytes, 512);
  });

  it('refuses a description that does not parse, or a window with no config space', () => {
    for (const bad of ['', '0x200@feb00000:5', '0x200@0xfeb00000', 'x@0x1:1', '0x100@0x1000:5']) {
      assert.throws(
        () => parseMmioDevice(bad),
        (e: unknown) => e instanceof Dom0Error && e.code === 'BAD_PLATFORM',
        bad,
      );
    }
  });
});
