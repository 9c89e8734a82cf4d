// SPDX-License-Identifier: GPL-2.0
/*
 * nestlab_vblk: a deliberately old-fashioned virtio-blk driver for nestlab's
 * reference runs. It drives one virtio-blk PCI device by hand, polling the
 * used ring, and never calls the DMA API: the address it writes into the ring
 * is chosen by addr_mode, so the real stack can show what happens when a
 * driver ignores the bus's address translation (the 2014 virtio/Xen thread).
 *
 *   pseudo   legacy transport (1af4:1001), virt_to_phys() addresses: what
 *            virtio_ring did before Linux 4.6
 *   machine  legacy transport, pfn_to_mfn()-translated machine addresses
 *   v1-only  modern transport (1af4:1042), accepts VERSION_1 but not
 *            ACCESS_PLATFORM, then stops: shows whether FEATURES_OK sticks
 *   v1-phys  modern transport, accepts VERSION_1 + ACCESS_PLATFORM but still
 *            writes virt_to_phys() addresses (a physical card's old driver)
 *   proposal-2014  modern transport, VERSION_1; machine addresses only when
 *            the device offers bit 25 (VIRTIO_F_USE_BUS_MAPPING, proposed in
 *            2014, never adopted), else virt_to_phys()
 *   half-fix legacy transport, the ring from dma_alloc_coherent() (machine
 *            addresses under Xen PV) but buffers still virt_to_phys(): the
 *            device completes requests into frames the driver does not own
 *
 * Everything it observes is printed as "NESTLAB key=value" lines.
 */
#include <linux/delay.h>
#include <linux/dma-mapping.h>
#include <linux/io.h>
#include <linux/jiffies.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/slab.h>
#include <linux/virtio_pci.h>
#include <xen/xen.h>
#include <asm/xen/page.h>
#include "nestlab_vblk.h"

static char *addr_mode = "pseudo";
module_param(addr_mode, charp, 0444);
MODULE_PARM_DESC(addr_mode, "pseudo | machine | v1-only | v1-phys | proposal-2014 | half-fix");
static int ios = 4;
module_param(ios, int, 0444);
MODULE_PARM_DESC(ios, "requests to issue: half writes, then reads of the same sectors");
static int timeout_ms = 3000;
module_param(timeout_ms, int, 0444);

#define say(fmt, ...) pr_info("NESTLAB " fmt "\n", ##__VA_ARGS__)

/* The address the device is given for a kernel buffer, per addr_mode. */
static u64 dev_addr(struct nvb *d, void *p)
{
	if (d->machine && xen_pv_domain())
		return virt_to_machine(p).maddr;
	return virt_to_phys(p);
}

/* Who owns machine frame m from dom0's point of view (Xen's M2P + our P2M). */
static const char *owner_of(u64 maddr, unsigned long *pfn_out)
{
	unsigned long mfn = maddr >> PAGE_SHIFT, pfn;

	*pfn_out = ~0UL;
	if (!xen_pv_domain())
		return "guest";
	pfn = mfn_to_pfn(mfn);
	if (pfn_to_mfn(pfn) != mfn)
		return "not-dom0";
	*pfn_out = pfn;
	return "dom0";
}

static int setup_ring(struct nvb *d)
{
	size_t bytes = nvb_ring_bytes(d->qsize);
	const char *owner;
	unsigned long pfn;
	int i;

	d->order = get_order(bytes);
	if (d->ring_dma) {
		/* Under Xen PV: machine-contiguous, the handle is a machine address. */
		d->ring = dma_alloc_coherent(&d->pdev->dev, PAGE_SIZE << d->order, &d->ring_handle,
					     GFP_KERNEL);
		d->ring_addr = d->ring_handle;
	} else {
		d->ring = (void *)__get_free_pages(GFP_KERNEL | __GFP_ZERO, d->order);
		d->ring_addr = d->ring ? dev_addr(d, d->ring) : 0;
	}
	if (!d->ring)
		return -ENOMEM;
	/* A machine-mode ring must be contiguous in machine memory too. */
	for (i = 1; d->machine && i < (1 << d->order); i++) {
		if (dev_addr(d, d->ring + i * PAGE_SIZE) != d->ring_addr + i * PAGE_SIZE) {
			say("error=ring-not-machine-contiguous");
			return -EINVAL;
		}
	}
	say("ring.pseudo=0x%llx ring.machine=0x%llx ring.given=0x%llx ring.bytes=%zu queue.size=%u",
	    (u64)virt_to_phys(d->ring),
	    xen_pv_domain() ? (u64)virt_to_machine(d->ring).maddr : (u64)virt_to_phys(d->ring),
	    d->ring_addr, bytes, d->qsize);
	owner = owner_of(d->ring_addr, &pfn);
	say("ring.given.owner=%s ring.given.owner_pfn=0x%lx", owner, pfn);
	/* We poll; ask the device not to interrupt. */
	nvb_avail(d)->flags = 1;
	return 0;
}

/* One request (3 descriptors) at a time; polls the used ring. */
static int do_request(struct nvb *d, u32 type, u64 sector, void *data, u8 *status)
{
	struct nvb_req *r = d->req;
	struct nvb_desc *desc = nvb_desc(d);
	struct nvb_avail *av = nvb_avail(d);
	volatile struct nvb_used *used = nvb_used(d);
	unsigned long deadline = jiffies + msecs_to_jiffies(timeout_ms);
	u16 want = d->used_seen + 1;

	r->type = type;
	r->reserved = 0;
	r->sector = sector;
	r->status = 0xff;
	desc[0] = (struct nvb_desc){ dev_addr(d, r), 16, 1, 1 };
	desc[1] = (struct nvb_desc){ dev_addr(d, data), PAGE_SIZE, 1 | (type == 0 ? 2 : 0), 2 };
	desc[2] = (struct nvb_desc){ dev_addr(d, &r->status), 1, 2, 0 };
	av->ring[av->idx % d->qsize] = 0;
	wmb(); /* descriptors before the index, index before the doorbell */
	av->idx++;
	mb();
	d->notify(d);
	while ((u16)READ_ONCE(used->idx) != want) {
		if (time_after(jiffies, deadline))
			return -ETIMEDOUT;
		usleep_range(200, 500);
	}
	rmb();
	d->used_seen = want;
	*status = READ_ONCE(r->status);
	return 0;
}

static void run_workload(struct nvb *d)
{
	int writes = max(ios / 2, 1), i, done = 0, verified = 0, corrupted = 0, failed = 0;
	int unwritten = 0;
	u8 st = 0xff;
	void *buf = (void *)__get_free_page(GFP_KERNEL);
	unsigned long pfn;

	if (!buf) {
		say("error=no-memory");
		return;
	}
	say("data.pseudo=0x%llx data.machine=0x%llx data.given=0x%llx", (u64)virt_to_phys(buf),
	    xen_pv_domain() ? (u64)virt_to_machine(buf).maddr : (u64)virt_to_phys(buf),
	    dev_addr(d, buf));
	say("data.given.owner=%s status.given=0x%llx status.given.owner=%s",
	    owner_of(dev_addr(d, buf), &pfn), dev_addr(d, &d->req->status),
	    owner_of(dev_addr(d, &d->req->status), &pfn));
	for (i = 0; i < 2 * writes; i++) {
		int w = i < writes, k = w ? i : i - writes, rc;

		memset(buf, w ? 0x5a ^ k : 0, PAGE_SIZE);
		rc = do_request(d, w ? 1 : 0, (u64)k * 8, buf, &st);
		if (rc) {
			say("io.timeout=%d type=%s", i, w ? "out" : "in");
			failed = 2 * writes - i;
			break;
		}
		done++;
		/* 0xff is our sentinel: a completion whose status byte never reached us. */
		if (st == 0xff)
			unwritten++;
		else if (st != 0) {
			say("io.status=%u index=%d", st, i);
			continue;
		}
		if (!w) {
			if (memchr_inv(buf, 0x5a ^ k, PAGE_SIZE))
				corrupted++;
			else
				verified++;
		}
	}
	say("io=done submitted=%d completed=%d verified=%d corrupted=%d failed=%d last_status=%u status.unwritten=%d",
	    2 * writes, done, verified, corrupted, failed, st, unwritten);
	free_page((unsigned long)buf);
}

static int nvb_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct nvb *d;
	int rc;

	d = devm_kzalloc(&pdev->dev, sizeof(*d), GFP_KERNEL);
	if (!d)
		return -ENOMEM;
	d->pdev = pdev;
	d->machine = !strcmp(addr_mode, "machine");
	d->ring_dma = !strcmp(addr_mode, "half-fix");
	d->proposal = !strcmp(addr_mode, "proposal-2014");
	pci_set_drvdata(pdev, d);
	rc = pcim_enable_device(pdev);
	if (rc)
		return rc;
	/* QUEUE_PFN holds 32 bits of a 4 KiB frame number. */
	if (d->ring_dma && dma_set_mask_and_coherent(&pdev->dev, DMA_BIT_MASK(32)))
		return -EIO;
	pci_set_master(pdev);
	say("probe=%s device=%04x:%04x mode=%s xen_pv=%d", pci_name(pdev), pdev->vendor,
	    pdev->device, addr_mode, xen_pv_domain() ? 1 : 0);
	if (pdev->device == 0x1001)
		rc = nvb_legacy_init(d);
	else
		rc = nvb_modern_init(d, !strcmp(addr_mode, "v1-phys"));
	if (rc > 0) /* the device refused; nothing more to do, but stay bound */
		return 0;
	if (rc)
		return rc;
	d->req = kzalloc(sizeof(*d->req), GFP_KERNEL);
	if (!d->req)
		return -ENOMEM;
	run_workload(d);
	return 0;
}

static void nvb_remove(struct pci_dev *pdev)
{
	struct nvb *d = pci_get_drvdata(pdev);

	d->reset(d);
	/* Only after the reset: the device may still hold the ring's address. */
	if (d->ring && d->ring_dma)
		dma_free_coherent(&pdev->dev, PAGE_SIZE << d->order, d->ring, d->ring_handle);
	else if (d->ring)
		free_pages((unsigned long)d->ring, d->order);
	kfree(d->req);
}

static const struct pci_device_id nvb_ids[] = {
	{ PCI_DEVICE(0x1af4, 0x1001) }, /* legacy / transitional virtio-blk */
	{ PCI_DEVICE(0x1af4, 0x1042) }, /* modern-only virtio-blk */
	{}
};
MODULE_DEVICE_TABLE(pci, nvb_ids);

static struct pci_driver nvb_driver = {
	.name = "nestlab_vblk",
	.id_table = nvb_ids,
	.probe = nvb_probe,
	.remove = nvb_remove,
};

int nvb_setup_ring(struct nvb *d) { return setup_ring(d); }
module_pci_driver(nvb_driver);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("nestlab reference: a virtio-blk driver that ignores the DMA API");
