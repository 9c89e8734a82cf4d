/* SPDX-License-Identifier: GPL-2.0 */
/* nestlab_vblk: shared state and the split-ring layout (legacy alignment). */
#ifndef NESTLAB_VBLK_H
#define NESTLAB_VBLK_H
#include <linux/pci.h>
#include <linux/types.h>

/* Rusty's 2014 proposal, never in the spec: the device wants the bus's mapping. */
#define NVB_F_USE_BUS_MAPPING 25

struct nvb_desc {
	u64 addr;
	u32 len;
	u16 flags;
	u16 next;
};

struct nvb_avail {
	u16 flags;
	u16 idx;
	u16 ring[];
};

struct nvb_used {
	u16 flags;
	u16 idx;
	struct {
		u32 id;
		u32 len;
	} ring[];
};

/* virtio-blk request header with the status byte right behind it. */
struct nvb_req {
	u32 type;
	u32 reserved;
	u64 sector;
	u8 status;
};

struct nvb {
	struct pci_dev *pdev;
	bool machine;
	/* half-fix: the ring comes from the DMA API, buffers stay virt_to_phys() */
	bool ring_dma;
	dma_addr_t ring_handle;
	/* proposal-2014: bus (machine) addresses only when the device offers bit 25 */
	bool proposal;
	u16 qsize;
	u16 used_seen;
	unsigned int order;
	void *ring;
	u64 ring_addr;
	struct nvb_req *req;
	void __iomem *io;	/* legacy: BAR0 I/O ports; modern: common config */
	void __iomem *notify_at;
	void (*notify)(struct nvb *d);
	void (*reset)(struct nvb *d);
};

/* Legacy layout: the used ring starts on the next 4 KiB boundary. */
static inline size_t nvb_used_off(u16 q)
{
	return ALIGN(16 * (size_t)q + 6 + 2 * (size_t)q, 4096);
}

static inline size_t nvb_ring_bytes(u16 q)
{
	return nvb_used_off(q) + 6 + 8 * (size_t)q;
}

static inline struct nvb_desc *nvb_desc(struct nvb *d)
{
	return d->ring;
}

static inline struct nvb_avail *nvb_avail(struct nvb *d)
{
	return d->ring + 16 * (size_t)d->qsize;
}

static inline struct nvb_used *nvb_used(struct nvb *d)
{
	return d->ring + nvb_used_off(d->qsize);
}

int nvb_setup_ring(struct nvb *d);
int nvb_legacy_init(struct nvb *d);
/* Returns 1 when the device refused FEATURES_OK. */
int nvb_modern_init(struct nvb *d, bool accept_access_platform);
#endif
