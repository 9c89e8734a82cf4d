// In-process micro-bench of the wire codec on its hottest message (issue 17):
// ns CPU per MemAccess op to encode a request (sender) and to decode and
// validate it (receiver), and per reply, for a batch shaped like dom0's at
// iodepth 32 (per I/O: a header store, descriptor stores, an avail entry; a
// 4 KiB data store for half of them; the avail index and the doorbell last).
// Beside each, the same through a JSON head (the form every other message
// has). Run after a build: node shared/protocol/bench/mem-access.mjs [iterations]
import {
  MemAccess,
  decodeFrame,
  decodeReply,
  decodeRequest,
  encodeFrame,
  encodeReply,
  encodeRequest,
} from '../dist/index.js';

const n = Number(process.argv[2] ?? 20_000);
const IOS = 32;
const ops = [];
let dataBytes = 0;
const w = (addr, len) => {
  ops.push({ op: 'write', addr: `0x${addr.toString(16)}`, len });
  dataBytes += len;
};
for (let i = 0; i < IOS; i++) {
  w(0x1_2345_6000 + i * 0x1000, 16);
  if (i % 2 === 0) w(0x2_0000_0000 + i * 0x1000, 4096);
  w(0x7654_3000 + i * 48, 48);
  w(0x7655_0004 + i * 2, 2);
}
w(0x7655_0002, 2);
ops.push({ op: 'write', addr: '0xfe003000', len: 4 });
dataBytes += 4;
const head = {
  requester: { kind: 'cpu', domain: 0 },
  ops,
  afterDoorbell: 'drained',
  ioIds: Array.from({ length: IOS }, (_, i) => `io-${i}`),
};
const data = new Uint8Array(dataBytes);
const readLens = Array.from({ length: IOS }, () => 8);

let sink = 0;
const measure = (label, perIter, count, body) => {
  body(Math.min(count, 2_000));
  const t0 = process.cpuUsage();
  body(count);
  const { user, system } = process.cpuUsage(t0);
  const ns = ((user + system) * 1000) / (count * perIter);
  console.log(`${label}: ${ns.toFixed(0)} ns CPU`);
};

const frame = encodeRequest(MemAccess, head, data);
console.log(
  `request of ${ops.length} ops: ${frame.byteLength - dataBytes} head bytes + ${dataBytes} data`,
);
measure('request encode, per op', ops.length, n, (c) => {
  for (let i = 0; i < c; i++) sink += encodeRequest(MemAccess, head, data).byteLength;
});
measure('request decode + validate, per op', ops.length, n, (c) => {
  for (let i = 0; i < c; i++) sink += decodeRequest(MemAccess, frame).head.ops.length;
});
const json = encodeFrame(head, data);
measure('  as JSON: request encode, per op', ops.length, n, (c) => {
  for (let i = 0; i < c; i++) sink += encodeFrame(head, data).byteLength;
});
measure('  as JSON: request decode + validate, per op', ops.length, n, (c) => {
  for (let i = 0; i < c; i++)
    sink += MemAccess.request.parse(decodeFrame(json).head, 'm').ops.length;
});
measure('data copy alone (in both), per op', ops.length, n, (c) => {
  for (let i = 0; i < c; i++) sink += new Uint8Array(data).byteLength;
});
const reply = encodeReply(MemAccess, { readLens }, new Uint8Array(IOS * 8));
console.log(`reply of ${IOS} reads: ${reply.byteLength - IOS * 8} head bytes`);
measure('reply encode + decode, per read', IOS, n, (c) => {
  for (let i = 0; i < c; i++) {
    const r = encodeReply(MemAccess, { readLens }, new Uint8Array(IOS * 8));
    sink += decodeReply(MemAccess, 's', r).head.readLens.length;
  }
});
measure('  as JSON: reply encode + decode, per read', IOS, n, (c) => {
  for (let i = 0; i < c; i++) {
    const r = encodeFrame({ ok: true, body: { readLens } }, new Uint8Array(IOS * 8));
    sink += MemAccess.reply.parse(decodeFrame(r).head.body, 'r').readLens.length;
  }
});
if (sink === 0) console.log('');
