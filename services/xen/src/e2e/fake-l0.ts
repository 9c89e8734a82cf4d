// Stands in for L0's MMU: answers CpuFrames and records what Xen sent.
import type { NatsConnection, Subscription } from '@nats-io/nats-core';
import {
  CpuFrames,
  decodeRequest,
  encodeReply,
  subjectOf,
  type RequestOf,
} from '@nestlab/protocol';

export class FakeL0 {
  readonly updates: RequestOf<typeof CpuFrames>[] = [];
  private sub: Subscription | undefined;

  constructor(
    private readonly nc: NatsConnection,
    private readonly stack: string,
  ) {}

  async start(): Promise<void> {
    this.sub = this.nc.subscribe(subjectOf(CpuFrames, this.stack), {
      callback: (_err, msg) => {
        const head = decodeRequest(CpuFrames, msg.data).head;
        this.updates.push(head);
        const frames = head.ranges.reduce((s, r) => s + r.count, 0);
        msg.respond(encodeReply(CpuFrames, { frames }));
      },
    });
    await this.nc.flush();
  }

  async stop(): Promise<void> {
    this.sub?.unsubscribe();
    this.sub = undefined;
    await this.nc.flush();
  }

  last(): RequestOf<typeof CpuFrames> | undefined {
    return this.updates[this.updates.length - 1];
  }
}
