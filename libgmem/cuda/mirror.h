/* SPDX-License-Identifier: MIT */
/*
 * mirror.h - the VRAM mirror's state, shared by attach.c (set-up, hints),
 * sync.c (pre-copy passes) and restore.c. Never installed.
 */
#ifndef GMEM_CUDA_MIRROR_H
#define GMEM_CUDA_MIRROR_H

#include <stdint.h>

#include <cuda_runtime.h>

#include "bitmap.h"
#include "gmem-cuda.h"

/*
 * Page bits, host side. @owed: the region lacks the page's current version
 * (every page after attach; a page that changed while dead). @dead: hinted
 * dead, never copied. @changed: the last fingerprint pass's result, copied
 * from the device. Only the mirror's thread touches them.
 */
struct gmem_cuda {
	struct gmem_region *r;
	uint8_t *region_base;   /* this process's view of the region at off */
	uint8_t *dptr;          /* the attached device allocation */
	uint64_t nr_pages;
	uint32_t page_size;
	int device;
	cudaStream_t stream;    /* blocking: ordered after the legacy stream */
	cudaEvent_t done[2];    /* a staging buffer's copy has completed */
	uint64_t *d_fp;         /* per-page fingerprints of the last pass */
	uint64_t *d_changed;    /* the pass's changed bits */
	uint32_t *d_idx;        /* pages to gather, in region order */
	uint32_t *idx;          /* pinned host copy of the same list */
	uint8_t *d_gather[2];   /* contiguous gathered pages, device */
	uint8_t *h_stage[2];    /* pinned host staging */
	uint64_t stage_pages;   /* pages per staging buffer */
	struct bitmap changed;
	struct bitmap owed;
	struct bitmap dead;
};

/* A cudaError_t as a negative errno: -ENOMEM, -ENODEV or -EIO. */
int mirror_errno(cudaError_t e);
/* Makes the mirror's device current; returns the previous one to give back
 * to mirror_leave(), or a negative errno. */
int mirror_enter(const struct gmem_cuda *c);
void mirror_leave(int prev);
/* Runs the fingerprint pass and leaves its changed bits in @c->changed. */
int mirror_fingerprint(struct gmem_cuda *c);
uint64_t mirror_now_ns(void);

#endif
