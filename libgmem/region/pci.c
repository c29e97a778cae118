// SPDX-License-Identifier: MIT
/*
 * pci.c - the NUMA node of a PCI device (the GPU), as the kernel publishes
 * it in sysfs (Documentation/ABI/testing/sysfs-bus-pci: numa_node). Needs no
 * libnuma; placing memory there is numa.c's.
 */
#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "syscall.h"

/* "DDDD:BB:DD.F" (hex domain, bus, device; function 0-7), or "BB:DD.F" in
 * domain 0000: lspci's forms. Anything else could walk out of sysfs. */
static bool pci_addr_ok(const char *a)
{
	static const char full[] = "xxxx:xx:xx.f", short_[] = "xx:xx.f";
	const char *form = strlen(a) == strlen(full) ? full : short_;

	if (strlen(a) != strlen(form))
		return false;
	for (size_t i = 0; form[i]; i++) {
		if (form[i] == 'x' && !isxdigit((unsigned char)a[i]))
			return false;
		if (form[i] == 'f' && (a[i] < '0' || a[i] > '7'))
			return false;
		if ((form[i] == ':' || form[i] == '.') && a[i] != form[i])
			return false;
	}
	return true;
}

static int read_small(const char *path, char *buf, size_t len)
{
	int fd = sys_ret(open(path, O_RDONLY | O_CLOEXEC));
	ssize_t n;

	if (fd < 0)
		return fd;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return 0;
}

int gmem_numa_node_of_pci(const char *sysfs, const char *addr)
{
	char path[4096], buf[32], *end;
	long node;
	int ret;

	if (!addr || !pci_addr_ok(addr))
		return -EINVAL;
	if (snprintf(path, sizeof(path), "%s/bus/pci/devices/%s%s/numa_node",
		     sysfs ? sysfs : "/sys", strlen(addr) == 7 ? "0000:" : "",
		     addr) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	ret = read_small(path, buf, sizeof(buf));
	if (ret < 0)
		return ret;
	node = strtol(buf, &end, 10);
	if (end == buf || (*end && *end != '\n') || node < -1 || node > 4095)
		return -EIO;
	/* -1: the firmware gave the device no node, as on every single-node
	 * machine and in most VMs. */
	return node < 0 ? -ENODATA : (int)node;
}
