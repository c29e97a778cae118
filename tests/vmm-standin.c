// SPDX-License-Identifier: MIT
/*
 * vmm-standin.c - a process that knows nothing of gmem, for
 * tests/vmm-preload.sh: it maps a shared file as QEMU maps a
 * memory-backend-file,share=on (MAP_SHARED, read and write), copies every
 * page it reads to OUT, then writes the pages that stdin names, one line
 * each ("A" or "A-B", page indexes), answering "wrote A-B" after each;
 * it exits at EOF on stdin.
 *   vmm-standin FILE PAGES OUT
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PS 4096UL

int main(int argc, char **argv)
{
	unsigned long pages, a, b;
	char line[64];
	uint8_t *p;
	int fd, out;

	if (argc != 4 || (pages = strtoul(argv[2], NULL, 0)) == 0) {
		fprintf(stderr, "usage: vmm-standin FILE PAGES OUT\n");
		return 2;
	}
	fd = open(argv[1], O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	out = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || out < 0 || ftruncate(fd, pages * PS) < 0) {
		perror("vmm-standin: set-up");
		return 1;
	}
	p = mmap(NULL, pages * PS, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		perror("vmm-standin: mmap");
		return 1;
	}
	/* write(2) from the mapping: the kernel's own reads fault too. */
	for (unsigned long i = 0; i < pages; i++)
		if (write(out, p + i * PS, PS) != (ssize_t)PS) {
			perror("vmm-standin: write");
			return 1;
		}
	close(out);
	printf("read %lu pages\n", pages);
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin)) {
		int n = sscanf(line, "%lu-%lu", &a, &b);

		if (n < 1)
			continue;
		if (n == 1)
			b = a;
		for (unsigned long i = a; i <= b && i < pages; i++)
			memset(p + i * PS, 0xa5, PS);
		printf("wrote %lu-%lu\n", a, b);
		fflush(stdout);
	}
	return 0;
}
