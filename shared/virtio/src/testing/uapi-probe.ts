// Test-only: compiles a small C program against the Linux uapi headers on this
// machine and returns what it prints, so tests compare our numbers with the
// kernel's. Missing tools fail loudly, naming the Debian package to install.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const UAPI_HEADERS = [
  'virtio_ring.h',
  'virtio_pci.h',
  'virtio_mmio.h',
  'virtio_blk.h',
  'virtio_config.h',
  'virtio_ids.h',
  'pci_regs.h',
].map((h) => `/usr/include/linux/${h}`);

/** Values each side of need_event's u16 wrap; the probe prints every triple's result. */
export const NEED_EVENT_SAMPLES = [0, 1, 2, 3, 0x7fff, 0x8000, 0xfffe, 0xffff];
export const VRING_SIZE_QUEUES = [1, 2, 8, 16, 256, 1024, 32768];

const MACROS = `
VIRTIO_MMIO_MAGIC_VALUE VIRTIO_MMIO_VERSION VIRTIO_MMIO_DEVICE_ID VIRTIO_MMIO_VENDOR_ID
VIRTIO_MMIO_DEVICE_FEATURES VIRTIO_MMIO_DEVICE_FEATURES_SEL VIRTIO_MMIO_DRIVER_FEATURES
VIRTIO_MMIO_DRIVER_FEATURES_SEL VIRTIO_MMIO_GUEST_PAGE_SIZE VIRTIO_MMIO_QUEUE_SEL
VIRTIO_MMIO_QUEUE_NUM_MAX VIRTIO_MMIO_QUEUE_NUM VIRTIO_MMIO_QUEUE_ALIGN VIRTIO_MMIO_QUEUE_PFN
VIRTIO_MMIO_QUEUE_READY VIRTIO_MMIO_QUEUE_NOTIFY VIRTIO_MMIO_INTERRUPT_STATUS
VIRTIO_MMIO_INTERRUPT_ACK VIRTIO_MMIO_STATUS VIRTIO_MMIO_QUEUE_DESC_LOW VIRTIO_MMIO_QUEUE_DESC_HIGH
VIRTIO_MMIO_QUEUE_AVAIL_LOW VIRTIO_MMIO_QUEUE_AVAIL_HIGH VIRTIO_MMIO_QUEUE_USED_LOW
VIRTIO_MMIO_QUEUE_USED_HIGH VIRTIO_MMIO_SHM_SEL VIRTIO_MMIO_SHM_LEN_LOW VIRTIO_MMIO_SHM_LEN_HIGH
VIRTIO_MMIO_SHM_BASE_LOW VIRTIO_MMIO_SHM_BASE_HIGH VIRTIO_MMIO_CONFIG_GENERATION VIRTIO_MMIO_CONFIG
VIRTIO_MMIO_INT_VRING VIRTIO_MMIO_INT_CONFIG
VIRTIO_PCI_CAP_COMMON_CFG VIRTIO_PCI_CAP_NOTIFY_CFG VIRTIO_PCI_CAP_ISR_CFG
VIRTIO_PCI_CAP_DEVICE_CFG VIRTIO_PCI_CAP_PCI_CFG VIRTIO_PCI_CAP_SHARED_MEMORY_CFG
VIRTIO_PCI_CAP_VNDR VIRTIO_PCI_CAP_NEXT VIRTIO_PCI_CAP_LEN VIRTIO_PCI_CAP_CFG_TYPE
VIRTIO_PCI_CAP_BAR VIRTIO_PCI_CAP_OFFSET VIRTIO_PCI_CAP_LENGTH VIRTIO_PCI_NOTIFY_CAP_MULT
VIRTIO_PCI_COMMON_DFSELECT VIRTIO_PCI_COMMON_DF VIRTIO_PCI_COMMON_GFSELECT VIRTIO_PCI_COMMON_GF
VIRTIO_PCI_COMMON_MSIX VIRTIO_PCI_COMMON_NUMQ VIRTIO_PCI_COMMON_STATUS
VIRTIO_PCI_COMMON_CFGGENERATION VIRTIO_PCI_COMMON_Q_SELECT VIRTIO_PCI_COMMON_Q_SIZE
VIRTIO_PCI_COMMON_Q_MSIX VIRTIO_PCI_COMMON_Q_ENABLE VIRTIO_PCI_COMMON_Q_NOFF
VIRTIO_PCI_COMMON_Q_DESCLO VIRTIO_PCI_COMMON_Q_DESCHI VIRTIO_PCI_COMMON_Q_AVAILLO
VIRTIO_PCI_COMMON_Q_AVAILHI VIRTIO_PCI_COMMON_Q_USEDLO VIRTIO_PCI_COMMON_Q_USEDHI
VIRTIO_PCI_COMMON_Q_NDATA VIRTIO_PCI_COMMON_Q_RESET
VIRTIO_PCI_ISR_CONFIG VIRTIO_MSI_NO_VECTOR VIRTIO_PCI_VRING_ALIGN
VIRTIO_CONFIG_S_ACKNOWLEDGE VIRTIO_CONFIG_S_DRIVER VIRTIO_CONFIG_S_DRIVER_OK
VIRTIO_CONFIG_S_FEATURES_OK VIRTIO_CONFIG_S_NEEDS_RESET VIRTIO_CONFIG_S_FAILED
VIRTIO_F_NOTIFY_ON_EMPTY VIRTIO_F_ANY_LAYOUT VIRTIO_F_VERSION_1 VIRTIO_F_ACCESS_PLATFORM
VIRTIO_F_IOMMU_PLATFORM VIRTIO_F_RING_PACKED VIRTIO_F_IN_ORDER VIRTIO_F_ORDER_PLATFORM
VIRTIO_F_SR_IOV VIRTIO_F_RING_RESET VIRTIO_RING_F_INDIRECT_DESC VIRTIO_RING_F_EVENT_IDX
VRING_DESC_F_NEXT VRING_DESC_F_WRITE VRING_DESC_F_INDIRECT VRING_USED_F_NO_NOTIFY
VRING_AVAIL_F_NO_INTERRUPT VRING_AVAIL_ALIGN_SIZE VRING_USED_ALIGN_SIZE VRING_DESC_ALIGN_SIZE
VIRTIO_BLK_F_SIZE_MAX VIRTIO_BLK_F_SEG_MAX VIRTIO_BLK_F_GEOMETRY VIRTIO_BLK_F_RO
VIRTIO_BLK_F_BLK_SIZE VIRTIO_BLK_F_FLUSH VIRTIO_BLK_F_TOPOLOGY VIRTIO_BLK_F_CONFIG_WCE
VIRTIO_BLK_F_MQ VIRTIO_BLK_F_DISCARD VIRTIO_BLK_F_WRITE_ZEROES
VIRTIO_BLK_T_IN VIRTIO_BLK_T_OUT VIRTIO_BLK_T_FLUSH VIRTIO_BLK_T_GET_ID VIRTIO_BLK_T_DISCARD
VIRTIO_BLK_T_WRITE_ZEROES VIRTIO_BLK_S_OK VIRTIO_BLK_S_IOERR VIRTIO_BLK_S_UNSUPP
VIRTIO_BLK_ID_BYTES VIRTIO_ID_BLOCK VIRTIO_ID_IOMMU
PCI_VENDOR_ID PCI_DEVICE_ID PCI_COMMAND PCI_STATUS PCI_REVISION_ID PCI_CLASS_PROG
PCI_CLASS_DEVICE PCI_HEADER_TYPE PCI_BASE_ADDRESS_0 PCI_BASE_ADDRESS_1 PCI_BASE_ADDRESS_2
PCI_BASE_ADDRESS_3 PCI_BASE_ADDRESS_4 PCI_BASE_ADDRESS_5 PCI_SUBSYSTEM_VENDOR_ID
PCI_SUBSYSTEM_ID PCI_CAPABILITY_LIST PCI_INTERRUPT_LINE PCI_INTERRUPT_PIN PCI_CAP_ID_VNDR
PCI_CAP_ID_MSIX PCI_STATUS_CAP_LIST PCI_COMMAND_IO PCI_COMMAND_MEMORY PCI_COMMAND_MASTER
PCI_MSIX_FLAGS PCI_MSIX_TABLE PCI_MSIX_PBA PCI_MSIX_FLAGS_QSIZE PCI_MSIX_FLAGS_ENABLE
`
  .trim()
  .split(/\s+/);

/** [struct, field] pairs whose offsetof and size the probe prints as "struct.field". */
const FIELDS: Record<string, string[]> = {
  vring_desc: ['addr', 'len', 'flags', 'next'],
  vring_avail: ['flags', 'idx', 'ring[0]'],
  vring_used: ['flags', 'idx', 'ring[0]'],
  vring_used_elem: ['id', 'len'],
  virtio_pci_cap: [
    'cap_vndr',
    'cap_next',
    'cap_len',
    'cfg_type',
    'bar',
    'id',
    'padding',
    'offset',
    'length',
  ],
  virtio_pci_notify_cap: ['notify_off_multiplier'],
  virtio_pci_common_cfg: [
    'device_feature_select',
    'device_feature',
    'guest_feature_select',
    'guest_feature',
    'msix_config',
    'num_queues',
    'device_status',
    'config_generation',
    'queue_select',
    'queue_size',
    'queue_msix_vector',
    'queue_enable',
    'queue_notify_off',
    'queue_desc_lo',
    'queue_desc_hi',
    'queue_avail_lo',
    'queue_avail_hi',
    'queue_used_lo',
    'queue_used_hi',
  ],
  virtio_blk_config: [
    'capacity',
    'size_max',
    'seg_max',
    'geometry',
    'geometry.cylinders',
    'geometry.heads',
    'geometry.sectors',
    'blk_size',
    'physical_block_exp',
    'alignment_offset',
    'min_io_size',
    'opt_io_size',
    'wce',
    'num_queues',
    'max_discard_sectors',
    'max_discard_seg',
    'discard_sector_alignment',
    'max_write_zeroes_sectors',
    'max_write_zeroes_seg',
    'write_zeroes_may_unmap',
  ],
  virtio_blk_outhdr: ['type', 'ioprio', 'sector'],
};

function cSource(): string {
  const lines = [
    '#include <stdio.h>',
    '#include <stdlib.h>',
    '#include <stddef.h>',
    '#include <stdint.h>',
    ...UAPI_HEADERS.map((h) => `#include <${h.replace('/usr/include/', '')}>`),
    '#define P(k, v) printf("\\"%s\\":%llu,\\n", k, (unsigned long long)(v))',
    'int main(void) {',
    '  printf("{\\n");',
    ...MACROS.map((m) => `  P("${m}", ${m});`),
  ];
  for (const [s, fields] of Object.entries(FIELDS)) {
    lines.push(`  P("sizeof.${s}", sizeof(struct ${s}));`);
    for (const f of fields) {
      lines.push(`  P("offsetof.${s}.${f}", offsetof(struct ${s}, ${f}));`);
      lines.push(`  P("sizeof.${s}.${f}", sizeof(((struct ${s} *)0)->${f}));`);
    }
  }
  for (const q of VRING_SIZE_QUEUES) {
    lines.push(
      `  { unsigned n = ${q}; unsigned sz = vring_size(n, 4096); char *p = aligned_alloc(4096, (sz + 4095) & ~4095u);`,
      '    struct vring vr; vring_init(&vr, n, p, 4096);',
      `    P("vring_size.${q}", sz);`,
      `    P("vring_init.${q}.avail", (char *)vr.avail - p);`,
      `    P("vring_init.${q}.used", (char *)vr.used - p);`,
      `    P("vring_init.${q}.used_event", (char *)&vring_used_event(&vr) - p);`,
      `    P("vring_init.${q}.avail_event", (char *)&vring_avail_event(&vr) - p);`,
      '    free(p); }',
    );
  }
  lines.push(
    `  static const unsigned s[] = {${NEED_EVENT_SAMPLES.join(', ')}};`,
    '  const unsigned n = sizeof s / sizeof s[0];',
    '  printf("\\"need_event\\":\\"");',
    '  for (unsigned a = 0; a < n; a++) for (unsigned b = 0; b < n; b++) for (unsigned c = 0; c < n; c++)',
    '    putchar(vring_need_event(s[a], s[b], s[c]) ? 49 : 48);',
    '  printf("\\"\\n}\\n");',
    '  return 0;',
    '}',
  );
  return lines.join('\n');
}

export type UapiValues = Record<string, number | string>;
let cached: UapiValues | undefined;

/** Runs the probe once per process; throws an Error naming the missing package. */
export function uapiValues(): UapiValues {
  if (cached) return cached;
  const missing = UAPI_HEADERS.filter((h) => !existsSync(h));
  if (missing.length > 0) {
    throw new Error(
      `Linux uapi headers missing (${missing.join(', ')}): install the Debian package linux-libc-dev`,
    );
  }
  const dir = mkdtempSync(join(tmpdir(), 'nestlab-uapi-'));
  try {
    writeFileSync(join(dir, 'probe.c'), cSource());
    const cc = spawnSync('cc', ['-std=gnu11', '-Wall', '-Werror', '-o', 'probe', 'probe.c'], {
      cwd: dir,
      encoding: 'utf8',
    });
    if (cc.error) {
      throw new Error(
        `cannot run the C compiler \`cc\` (${cc.error.message}): install the Debian package gcc`,
      );
    }
    if (cc.status !== 0) {
      const hint = /No such file/.test(cc.stderr)
        ? ' (headers missing? install linux-libc-dev)'
        : '';
      throw new Error(`the uapi probe did not compile${hint}:\n${cc.stderr}`);
    }
    const run = spawnSync(join(dir, 'probe'), { encoding: 'utf8' });
    if (run.status !== 0) throw new Error(`the uapi probe failed: ${run.stderr}`);
    cached = JSON.parse(run.stdout) as UapiValues;
    return cached;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A numeric value the probe printed; throws if it did not print it. */
export function uapi(key: string): number {
  const v = uapiValues()[key];
  if (typeof v !== 'number') throw new Error(`uapi probe printed no number for ${key}`);
  return v;
}
