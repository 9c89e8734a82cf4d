// SPDX-License-Identifier: GPL-2.0
/*
 * nestlab_vblk transports: the legacy I/O-port registers (virtio 0.9.5) and
 * the modern capability-based common configuration (virtio 1.x, 4.1.4).
 */
#include <linux/delay.h>
#include <linux/io.h>
#include <linux/pci.h>
#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>
#include "nestlab_vblk.h"

#define say(fmt, ...) pr_info("NESTLAB " fmt "\n", ##__VA_ARGS__)
#define CC(field) (d->io + offsetof(struct virtio_pci_common_cfg, field))

static void legacy_notify(struct nvb *d) { iowrite16(0, d->io + VIRTIO_PCI_QUEUE_NOTIFY); }
static void legacy_reset(struct nvb *d) { iowrite8(0, d->io + VIRTIO_PCI_STATUS); }

int nvb_legacy_init(struct nvb *d)
{
	u8 ok = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER;
	u32 offered;
	int rc;

	rc = pcim_iomap_regions(d->pdev, BIT(0), "nestlab_vblk");
	if (rc)
		return rc;
	d->io = pcim_iomap_table(d->pdev)[0];
	d->notify = legacy_notify;
	d->reset = legacy_reset;
	legacy_reset(d);
	iowrite8(ok, d->io + VIRTIO_PCI_STATUS);
	offered = ioread32(d->io + VIRTIO_PCI_HOST_FEATURES);
	/* A 2014 driver: accepts no feature at all (no VERSION_1 on legacy). */
	iowrite32(0, d->io + VIRTIO_PCI_GUEST_FEATURES);
	iowrite16(0, d->io + VIRTIO_PCI_QUEUE_SEL);
	d->qsize = ioread16(d->io + VIRTIO_PCI_QUEUE_NUM);
	if (!d->qsize) {
		say("error=no-queue");
		return -ENODEV;
	}
	rc = nvb_setup_ring(d);
	if (rc)
		return rc;
	iowrite32(d->ring_addr >> VIRTIO_PCI_QUEUE_ADDR_SHIFT, d->io + VIRTIO_PCI_QUEUE_PFN);
	iowrite8(ok | VIRTIO_CONFIG_S_DRIVER_OK, d->io + VIRTIO_PCI_STATUS);
	say("transport=legacy features.offered=0x%x features.negotiated=0x0 status=0x%x", offered,
	    ioread8(d->io + VIRTIO_PCI_STATUS));
	return 0;
}

static void modern_notify(struct nvb *d) { iowrite16(0, d->notify_at); }
static void modern_reset(struct nvb *d) { iowrite8(0, CC(device_status)); }

static void write64(void __iomem *lo, u64 v)
{
	iowrite32((u32)v, lo);
	iowrite32(v >> 32, lo + 4);
}

/* Finds the common and notify capabilities (virtio 1.x, 4.1.4.3/4.1.4.4). */
static int map_caps(struct nvb *d)
{
	struct pci_dev *p = d->pdev;
	void __iomem *notify = NULL;
	u32 mult = 0;
	int pos;

	for (pos = pci_find_capability(p, PCI_CAP_ID_VNDR); pos;
	     pos = pci_find_next_capability(p, pos, PCI_CAP_ID_VNDR)) {
		u8 type, bar;
		u32 off, len;

		pci_read_config_byte(p, pos + offsetof(struct virtio_pci_cap, cfg_type), &type);
		pci_read_config_byte(p, pos + offsetof(struct virtio_pci_cap, bar), &bar);
		pci_read_config_dword(p, pos + offsetof(struct virtio_pci_cap, offset), &off);
		pci_read_config_dword(p, pos + offsetof(struct virtio_pci_cap, length), &len);
		if (type == VIRTIO_PCI_CAP_COMMON_CFG && !d->io)
			d->io = pci_iomap_range(p, bar, off, len);
		if (type == VIRTIO_PCI_CAP_NOTIFY_CFG && !notify) {
			pci_read_config_dword(p, pos + sizeof(struct virtio_pci_cap), &mult);
			notify = pci_iomap_range(p, bar, off, len);
		}
	}
	if (!d->io || !notify)
		return -ENODEV;
	d->notify_at = notify; /* queue 0's offset is added once the queue is known */
	return mult;
}

int nvb_modern_init(struct nvb *d, bool accept_ap)
{
	u8 st = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER;
	u64 offered, accepted;
	int mult, rc;

	mult = map_caps(d);
	if (mult < 0)
		return mult;
	d->notify = modern_notify;
	d->reset = modern_reset;
	modern_reset(d);
	while (ioread8(CC(device_status)))
		msleep(1);
	iowrite8(st, CC(device_status));
	iowrite32(0, CC(device_feature_select));
	offered = ioread32(CC(device_feature));
	iowrite32(1, CC(device_feature_select));
	offered |= (u64)ioread32(CC(device_feature)) << 32;
	accepted = offered & (BIT_ULL(VIRTIO_F_VERSION_1) |
			      (accept_ap ? BIT_ULL(VIRTIO_F_ACCESS_PLATFORM) : 0));
	if (d->proposal) {
		say("features.bit25=%d", offered & BIT_ULL(NVB_F_USE_BUS_MAPPING) ? 1 : 0);
		/* The proposal's driver: the DMA API's (machine) addresses only if asked. */
		if (offered & BIT_ULL(NVB_F_USE_BUS_MAPPING)) {
			accepted |= BIT_ULL(NVB_F_USE_BUS_MAPPING);
			d->machine = true;
		}
	}
	iowrite32(0, CC(guest_feature_select));
	iowrite32((u32)accepted, CC(guest_feature));
	iowrite32(1, CC(guest_feature_select));
	iowrite32(accepted >> 32, CC(guest_feature));
	iowrite8(st | VIRTIO_CONFIG_S_FEATURES_OK, CC(device_status));
	st = ioread8(CC(device_status));
	say("transport=modern features.offered=0x%llx features.accepted=0x%llx status=0x%x", offered,
	    accepted, st);
	if (!(st & VIRTIO_CONFIG_S_FEATURES_OK)) {
		/* The spec's answer to a refused FEATURES_OK: give up, set FAILED. */
		iowrite8(st | VIRTIO_CONFIG_S_FAILED, CC(device_status));
		say("driver=features-rejected features.negotiated=none status=0x%x",
		    ioread8(CC(device_status)));
		return 1;
	}
	say("features.negotiated=0x%llx", accepted);
	iowrite16(0, CC(queue_select));
	d->qsize = ioread16(CC(queue_size));
	rc = nvb_setup_ring(d);
	if (rc)
		return rc;
	write64(CC(queue_desc_lo), d->ring_addr);
	write64(CC(queue_avail_lo), d->ring_addr + 16 * (u64)d->qsize);
	write64(CC(queue_used_lo), d->ring_addr + nvb_used_off(d->qsize));
	d->notify_at += ioread16(CC(queue_notify_off)) * mult;
	iowrite16(1, CC(queue_enable));
	iowrite8(st | VIRTIO_CONFIG_S_DRIVER_OK, CC(device_status));
	return 0;
}
