// SPDX-License-Identifier: MIT
/*
 * connect.c - the destination end of a page server session, set-up:
 * checking the caller's parameters, the connection buffers and rings, and
 * opening the connection set with the HELLO and AUTH exchanges (also how
 * recovery resumes a session). Frames are remote.c's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "remote-source/remote.h"

/* The wire's HELLO carries every bulk count gmem.h allows. */
_Static_assert(GMEM_MAX_BULK <= PROTO_MAX_BULK, "GMEM_MAX_BULK");

static int check_params(const struct gmem_remote_params *p,
			unsigned int *nr_bulk, int *wait_ms, uint32_t *flags,
			struct auth_key *key, struct proto_geom *expect)
{
	*nr_bulk = 1;
	*wait_ms = 10000;
	*flags = 0;
	if (!p)
		return 0;
	if ((p->flags & ~(GMEM_REMOTE_ON_DEMAND | GMEM_REMOTE_RDMA)) ||
	    p->nr_bulk > GMEM_MAX_BULK || p->recover_ms < -1 ||
	    !p->expect_page_size != !p->expect_nr_pages)
		return -EINVAL;
	for (size_t i = 0; i < ARRAY_SIZE(p->resv); i++)
		if (p->resv[i])
			return -EINVAL;
	/* Last: nothing can refuse the parameters once the key is copied. */
	if (p->key || p->key_len) {
		int ret = auth_key_set(key, p->key, p->key_len);

		if (ret < 0)
			return ret;
	}
	if (p->nr_bulk)
		*nr_bulk = p->nr_bulk;
	if (p->connect_ms)
		*wait_ms = p->connect_ms;
	*flags = p->flags;
	expect->page_size = p->expect_page_size;
	expect->nr_pages = p->expect_nr_pages;
	return 0;
}

int rm_endpoints_init(struct gmem_remote *rm)
{
	int ret = 0;

	for (unsigned int i = 0; i < rm->nr_conns && ret == 0; i++) {
		uint8_t *buf = rm->mem + i * rm->per_conn;

		wire_rx_init(&rm->rx[i], 0, buf, rm->per_conn,
			     PROTO_MAX_PAYLOAD);
		ret = rm->ops->init(&rm->t[i], 8, buf, rm->per_conn);
	}
	return ret;
}

void rm_endpoints_fini(struct gmem_remote *rm)
{
	for (unsigned int i = 0; i < rm->nr_conns; i++)
		if (rm->t[i].ops)
			rm->t[i].ops->fini(&rm->t[i]);
}

static int remote_alloc(struct gmem_remote *rm, unsigned int nr_conns)
{
	/* A largest frame and a few push frames behind it. */
	size_t per_conn = PROTO_HDR_LEN + PROTO_MAX_PAYLOAD + (1U << 20);
	pthread_condattr_t ca;

	/* Each connection's slice starts on a page: it is registered with
	 * its own ring. */
	per_conn = (per_conn + 4095) & ~(size_t)4095;
	rm->per_conn = per_conn;
	rm->mem_len = nr_conns * per_conn;
	rm->mem = aligned_alloc(4096, rm->mem_len);
	if (!rm->mem)
		return -ENOMEM;
	if (auth_on(&rm->key)) {
		rm->ctl_buf = malloc(PROTO_HDR_LEN + PROTO_MAX_BITMAP_LEN +
				     SEAL_TAG_LEN);
		if (!rm->ctl_buf)
			return -ENOMEM;
	}
	pthread_mutex_init(&rm->lock, NULL);
	pthread_mutex_init(&rm->ctl_lock, NULL);
	pthread_condattr_init(&ca);
	/* gmem_remote_wait() computes its deadline on the monotonic clock. */
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&rm->cond, &ca);
	pthread_condattr_destroy(&ca);
	return rm_endpoints_init(rm);
}

int rm_open_conn(struct gmem_remote *rm, const char *addr, unsigned int idx,
		 bool resume, char *why_buf, size_t why_len)
{
	uint8_t buf[PROTO_HDR_LEN + PROTO_AUTH_LEN];
	struct proto_hello srv, me = {
		.role = !idx		   ? PROTO_ROLE_CONTROL
			: idx <= rm->nr_bulk ? PROTO_ROLE_BULK
					     : PROTO_ROLE_PREFETCH,
		.features = PROTO_FEATURES |
			    (auth_on(&rm->key) ? PROTO_FEAT_AUTH |
			     PROTO_FEAT_SEAL | (seal_aes_available() ?
						PROTO_FEAT_AES256GCM : 0) : 0) |
			    (resume && !idx ? PROTO_FEAT_RESUME : 0),
		.session = rm->session, .nr_bulk = idx ? 0 : rm->nr_bulk,
	};
	uint32_t seq = 1;
	int wait_ms = rm->wait_ms;
	int64_t wait_ns = wait_ms < 0 ? -1 : wait_ms * 1000000LL;
	struct transport *t = &rm->t[idx];
	uint8_t secret[SEAL_SECRET_LEN];
	struct seal unused;
	const char *why = "";
	char geom[128];
	int fd, ret;

	/* With reads every page is read, none asked for: no hints. */
	if (rm->ops->caps & TRANSPORT_CAP_READ)
		me.features = (me.features | PROTO_FEAT_RDMA) &
			      ~PROTO_FEAT_PREFETCH;
	fd = t->ops->connect(addr, wait_ms);
	if (fd < 0) {
		snprintf(why_buf, why_len, "connect %s: %s", addr,
			 strerror(-fd));
		return fd;
	}
	ret = t->ops->add_conn(t, fd);
	if (ret < 0) {
		close(fd);
		snprintf(why_buf, why_len, "too many connections");
		return ret;
	}
	if (!idx) /* its urgent requests */
		t->ops->prioritize(t, ret);
	ret = wire_hello_send(t, 0, buf, 0, &me, wait_ns);
	if (ret < 0)
		why = "HELLO: send failed";
	if (ret == 0)
		ret = wire_hello_recv(t, &rm->rx[idx], &srv, wait_ns, &why);
	if (ret == 0 && srv.role != PROTO_ROLE_SERVER)
		ret = -EPROTO, why = "HELLO: peer is not a page server";
	if (ret == 0 && resume && !idx && (!(srv.features & PROTO_FEAT_RESUME) ||
					   srv.session != rm->session))
		ret = -EPROTO, why = "HELLO: the server did not take the "
				     "session back";
	if (ret == 0 && (idx || resume) && (srv.session != rm->session ||
				srv.page_size != rm->geom.page_size ||
				srv.nr_pages != rm->geom.nr_pages))
		ret = -EPROTO, why = "HELLO: bulk connection reached another session";
	if (ret == 0 && !idx && !resume && rm->expect.page_size &&
	    (srv.page_size != rm->expect.page_size ||
	     srv.nr_pages != rm->expect.nr_pages)) {
		snprintf(geom, sizeof(geom), "the server's region has %llu "
			 "pages of %u bytes, this one %llu of %u",
			 (unsigned long long)srv.nr_pages, srv.page_size,
			 (unsigned long long)rm->expect.nr_pages,
			 rm->expect.page_size);
		ret = -EINVAL, why = geom;
	}
	if (ret == 0 && !idx && (rm->ops->caps & TRANSPORT_CAP_READ) &&
	    !(srv.features & PROTO_FEAT_RDMA))
		ret = -EPROTONOSUPPORT,
		why = "the page server offers no RDMA (serve with --transport rdma)";
	/* The connection set was sized by the first answer. */
	if (ret == 0 && resume && !idx &&
	    !(srv.features & PROTO_FEAT_PREFETCH) != !rm->prefetch)
		ret = -EPROTO, why = "HELLO: the server changed its features";
	if (ret == 0 && auth_on(&rm->key) && !(srv.features & PROTO_FEAT_AUTH))
		ret = -EACCES, why = "the page server offers no authentication "
				     "(no key there?)";
	if (ret == 0 && auth_on(&rm->key) && !(srv.features & PROTO_FEAT_SEAL))
		ret = -EACCES, why = "the page server does not encrypt (an "
				     "older gmem?)";
	if (ret == 0 && auth_on(&rm->key))
		ret = auth_client(t, &rm->rx[idx], buf, &seq, &rm->key,
				  srv.session, me.role, wait_ns, secret, &why);
	if (ret < 0) {
		snprintf(why_buf, why_len, "connection %u: %s", idx, why);
		return ret;
	}
	if (auth_on(&rm->key)) {
		/* Only the control connection carries frames of ours. */
		seal_derive(secret, seal_cipher_of(srv.features), false,
			    idx ? &unused : &rm->ctl_tx, &rm->rx[idx].open);
		seal_clear(&unused);
		sodium_memzero(secret, sizeof(secret));
	}
	if (!idx) { /* the control connection's next frame number */
		rm->ctl_seq = seq;
		rm->prefetch = srv.features & PROTO_FEAT_PREFETCH;
		rm->win.key = srv.rkey;
		rm->win.addr = srv.raddr;
	}
	rm->geom.page_size = srv.page_size;
	rm->geom.nr_pages = srv.nr_pages;
	rm->session = srv.session;
	return 0;
}

int gmem_remote_connect(const char *addr, const struct gmem_remote_params *p,
			struct gmem_remote **out)
{
	struct gmem_remote *rm;
	unsigned int nr_bulk;
	uint32_t flags;
	char why[160];
	int wait_ms, ret;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!addr || strlen(addr) >= sizeof(rm->addr))
		return -EINVAL;
	rm = calloc(1, sizeof(*rm));
	if (!rm)
		return -ENOMEM;
	ret = check_params(p, &nr_bulk, &wait_ms, &flags, &rm->key,
			   &rm->expect);
	if (ret < 0) {
		auth_key_clear(&rm->key);
		free(rm);
		return ret;
	}
	rm->flags = flags;
	rm->ops = transport_find(flags & GMEM_REMOTE_RDMA ? "rdma" : "tcp");
	rm->nr_bulk = nr_bulk;
	/* And a fault-around connection, unless the server takes no hints
	 * (then dropped after the first HELLO) or every page is read. */
	rm->nr_conns = 1 + nr_bulk + !(rm->ops->caps & TRANSPORT_CAP_READ);
	rm->wait_ms = wait_ms;
	rm->recover_ms = p ? p->recover_ms : 0;
	strcpy(rm->addr, addr);
	ret = remote_alloc(rm, rm->nr_conns);
	if (ret < 0) {
		gmem_remote_destroy(rm);
		return ret;
	}
	for (unsigned int i = 0; ret == 0 && i < rm->nr_conns; i++) {
		ret = rm_open_conn(rm, addr, i, false, why, sizeof(why));
		if (ret < 0)
			rm_fail(rm, ret, "%s", why);
		if (ret == 0 && !i && !rm->prefetch &&
		    rm->nr_conns > 1 + nr_bulk) {
			rm->nr_conns--;
			rm->t[rm->nr_conns].ops->fini(&rm->t[rm->nr_conns]);
		}
	}
	for (unsigned int i = 0; ret == 0 && i < rm->nr_conns; i++)
		ret = wire_rx_start(&rm->t[i], &rm->rx[i]);
	if (ret == 0 && (rm->ops->caps & TRANSPORT_CAP_READ)) {
		ret = rm_reads_open(rm, addr, why, sizeof(why));
		if (ret < 0)
			rm_fail(rm, ret, "%s", why);
	}
	/* Failed, but handed out all the same: its error text says why (the
	 * server's refusal, the bad HELLO, the RDMA device). */
	if (ret < 0)
		rm_fail(rm, ret, "%s", strerror(-ret));
	*out = rm;
	return ret;
}

uint32_t gmem_remote_page_size(const struct gmem_remote *rm)
{
	return rm->geom.page_size;
}

uint64_t gmem_remote_nr_pages(const struct gmem_remote *rm)
{
	return rm->geom.nr_pages;
}
