/**
 * Linux uapi vring_need_event(): with VIRTIO_F_EVENT_IDX, notify when the
 * index moved from `oldIdx` to `newIdx` past the other side's `eventIdx`,
 * i.e. eventIdx lies in [oldIdx, newIdx). All arithmetic is u16, so the test
 * stays right when the indexes wrap at 65536.
 */
export function vringNeedEvent(eventIdx: number, newIdx: number, oldIdx: number): boolean {
  return ((newIdx - eventIdx - 1) & 0xffff) < ((newIdx - oldIdx) & 0xffff);
}
