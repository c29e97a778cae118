// SPDX-License-Identifier: MIT
/*
 * accept.c - the page server's set-up: its registered buffers, the
 * listening socket, and accepting a destination's connection set (HELLO,
 * AUTH, RESUME), refusing strangers without ending the wait. Serving is
 * server.c's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "page-server/server.h"

/* A receive buffer holds a largest frame and some of the next. */
static uint32_t rx_size(uint32_t rx_cap)
{
	return PROTO_HDR_LEN + rx_cap + RX_SLACK;
}

static size_t conn_bytes(unsigned int nr_slots, uint32_t slot_cap,
			 uint32_t rx_cap)
{
	return nr_slots * (size_t)(PROTO_HDR_LEN + slot_cap + SEAL_TAG_LEN) +
	       rx_size(rx_cap);
}

/* Carves the registered buffer: each connection's send slots, then its
 * receive buffer (the control connection takes NEED bitmaps; bulk ones
 * take nothing but the handshake's HELLO and AUTH). */
static void conns_layout(struct gmem_server *s)
{
	uint8_t *p = s->mem;

	for (unsigned int i = 0; i < PROTO_MAX_CONNS; i++) {
		struct srv_conn *c = &s->conns[i];
		uint32_t rx_cap = i ? PROTO_AUTH_LEN : PROTO_MAX_BITMAP_LEN;

		c->nr_slots = i ? BULK_SLOTS : CTL_SLOTS;
		for (unsigned int j = 0; j < c->nr_slots; j++) {
			c->slots[j].buf = p;
			p += PROTO_HDR_LEN + s->slot_cap + SEAL_TAG_LEN;
		}
		wire_rx_init(&c->rx, i, p, rx_size(rx_cap), rx_cap);
		p += rx_size(rx_cap);
	}
}

int srv_conns_reset(struct gmem_server *s)
{
	if (s->t.ops)
		s->t.ops->fini(&s->t);
	memset(s->conns, 0, sizeof(s->conns));
	conns_layout(s);
	s->nr_conns = 0;
	s->nr_batch = 0;
	return s->ops->init(&s->t, 256, s->mem, s->mem_len);
}

static int server_alloc(struct gmem_server *s)
{
	s->slot_cap = s->r->page_size > RUN_BYTES ? s->r->page_size : RUN_BYTES;
	s->mem_len = conn_bytes(CTL_SLOTS, s->slot_cap, PROTO_MAX_BITMAP_LEN) +
		     (PROTO_MAX_CONNS - 1) * conn_bytes(BULK_SLOTS, s->slot_cap,
						  PROTO_AUTH_LEN);
	s->mem = aligned_alloc(4096, (s->mem_len + 4095) & ~4095UL);
	if (!s->mem)
		return -ENOMEM;
	conns_layout(s);
	if (bitmap_init(&s->need, s->r->nr_pages, false) < 0)
		return -ENOMEM;
	return s->ops->init(&s->t, 256, s->mem, s->mem_len);
}

int gmem_server_listen(struct gmem_region *r, const char *addr,
		       struct gmem_server **out)
{
	struct gmem_server *s;
	int ret;

	if (!r || !addr || !out)
		return -EINVAL;
	/* Anonymous missing pages cannot be read without faulting. */
	if (!r->alias && (r->flags & GMEM_REGION_MISSING))
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->r = r;
	s->base = r->alias ? r->alias : r->addr;
	s->ops = transport_find("tcp");
	pthread_mutex_init(&s->push.lock, NULL);
	pthread_cond_init(&s->push.cond, NULL);
	pthread_cond_init(&s->push.hint_cond, NULL);
	s->geom.page_size = r->page_size;
	s->geom.nr_pages = r->nr_pages;
	s->lfd = -1;
	ret = server_alloc(s);
	if (ret < 0)
		goto fail;
	ret = s->ops->listen(addr, &s->port);
	if (ret < 0)
		goto fail;
	s->lfd = ret;
	*out = s;
	return 0;
fail:
	gmem_server_destroy(s);
	return ret;
}

uint16_t gmem_server_port(const struct gmem_server *s)
{
	return s->port;
}

void srv_send_error(struct gmem_server *s, unsigned int conn, int err,
		    const char *why)
{
	uint8_t buf[PROTO_HDR_LEN + PROTO_MAX_ERROR_LEN + SEAL_TAG_LEN];
	struct seal *tx = &s->conns[conn].tx;
	struct proto_hdr h = {
		.type = PROTO_ERROR, .len = strlen(why) + 1,
		.seq = s->conns[conn].tx_seq++, .pgoff = err,
	};

	if (h.len > PROTO_MAX_ERROR_LEN)
		h.len = PROTO_MAX_ERROR_LEN;
	memcpy(buf + PROTO_HDR_LEN, why, h.len);
	s->t.ops->send_now(&s->t, conn, buf, wire_encode(tx, buf, &h, NULL));
}

/* Accepts connection @idx, of @role, and checks its HELLO; answers it. */
static int accept_conn(struct gmem_server *s, unsigned int idx,
		       enum proto_role role, int wait_ms, bool resume,
		       struct proto_hello *hello)
{
	struct srv_conn *c = &s->conns[idx];
	struct proto_hello me = {
		.role = PROTO_ROLE_SERVER, .page_size = s->r->page_size,
		.nr_pages = s->r->nr_pages, .features = PROTO_FEATURES,
		.session = s->session,
	};
	int64_t wait_ns = wait_ms < 0 ? -1 : wait_ms * 1000000LL;
	uint8_t secret[SEAL_SECRET_LEN];
	const char *why = "";
	int fd, ret;

	fd = s->t.ops->accept(s->lfd, wait_ms);
	if (fd == -ETIMEDOUT && idx == 0)
		return srv_err(s, fd, "no destination connected within %d ms",
			       wait_ms);
	if (fd == -ETIMEDOUT)
		return srv_err(s, fd, "connection %u: the destination did not "
			       "open it within %d ms", idx, wait_ms);
	if (fd < 0)
		return srv_err(s, fd, "accept: %s", strerror(-fd));
	ret = s->t.ops->add_conn(&s->t, fd);
	if (ret < 0) {
		close(fd);
		return srv_err(s, ret, "accept: too many connections");
	}
	if (role == PROTO_ROLE_CONTROL) /* its urgent answers */
		s->t.ops->prioritize(&s->t, ret);
	ret = wire_hello_recv(&s->t, &c->rx, hello, wait_ns, &why);
	if (!ret && hello->role != role)
		ret = -EPROTO, why = "HELLO: unexpected role";
	if (!ret && idx && hello->session != s->session)
		ret = -EPROTO, why = "HELLO: connection of another session";
	if (!ret && !idx && !hello->nr_bulk)
		ret = -EPROTO, why = "HELLO: no bulk connection announced";
	if (!ret && !idx && !(hello->features & PROTO_FEAT_RESUME) != !resume)
		ret = -EPROTO, why = resume ? "HELLO: a new destination while "
					      "the session is paused"
					    : "HELLO: resumes a session this "
					      "server does not have";
	if (!ret && !idx && resume && hello->session != s->session)
		ret = -EPROTO, why = "HELLO: resumes another session";
	if (!ret && auth_on(&s->key) && !(hello->features & PROTO_FEAT_AUTH))
		ret = -EACCES, why = "the page server needs a key; the "
				     "destination offered none";
	if (!ret && auth_on(&s->key) && !(hello->features & PROTO_FEAT_SEAL))
		ret = -EACCES, why = "the page server encrypts; the "
				     "destination does not (an older gmem?)";
	if (ret < 0)
		goto refuse;
	if (auth_on(&s->key))
		me.features |= PROTO_FEAT_AUTH | PROTO_FEAT_SEAL |
			       (seal_aes_available() ? PROTO_FEAT_AES256GCM : 0);
	me.features |= resume ? PROTO_FEAT_RESUME : 0;
	/* The key is no secret: only queue pairs this server accepts (after
	 * every HELLO and AUTH) belong to its protection domain. */
	me.features |= s->reads.ops ? PROTO_FEAT_RDMA : 0;
	me.features &= hello->features;
	if (me.features & PROTO_FEAT_RDMA) {
		me.rkey = s->win.key;
		me.raddr = s->win.addr;
		s->reads_on = true;
	}
	c->tx_seq = 1;
	ret = wire_hello_send(&s->t, idx, c->slots[0].buf, 0, &me, wait_ns);
	if (ret < 0)
		return srv_err(s, ret, "connection %u: HELLO: %s", idx,
			       strerror(-ret));
	if (!auth_on(&s->key))
		return 0;
	ret = auth_server(&s->t, &c->rx, c->slots[0].buf, &c->tx_seq, &s->key,
			  s->session, hello->role, wait_ns, secret, &why);
	if (ret == 0) {
		/* Every frame after the AUTH ones, both ways, is sealed. */
		seal_derive(secret, seal_cipher_of(me.features), true, &c->tx,
			    &c->rx.open);
		sodium_memzero(secret, sizeof(secret));
		return 0;
	}
refuse:
	if (ret == -EPROTO || ret == -EACCES)
		srv_send_error(s, idx, -ret, why);
	return srv_err(s, ret, "connection %u: %s", idx, why);
}

int gmem_server_set_key(struct gmem_server *s, const void *key, size_t len)
{
	if (s->nr_conns)
		return -EALREADY;
	return auth_key_set(&s->key, key, len);
}

int gmem_server_set_recover(struct gmem_server *s, int recover_ms)
{
	if (recover_ms < -1)
		return -EINVAL;
	if (s->nr_conns)
		return -EALREADY;
	s->recover_ms = recover_ms;
	return 0;
}

int srv_accept_set(struct gmem_server *s, int wait_ms, bool resume)
{
	struct proto_hello hello;
	unsigned int nr_bulk;
	bool prefetch;
	int ret;

	ret = accept_conn(s, 0, PROTO_ROLE_CONTROL, wait_ms, resume, &hello);
	if (ret < 0)
		return ret;
	nr_bulk = hello.nr_bulk;
	/* Offered is agreed: this server always takes hints. */
	prefetch = hello.features & PROTO_FEAT_PREFETCH;
	for (unsigned int i = 1; i <= nr_bulk + prefetch; i++) {
		ret = accept_conn(s, i, i > nr_bulk ? PROTO_ROLE_PREFETCH
						    : PROTO_ROLE_BULK,
				  wait_ms, resume, &hello);
		if (ret < 0)
			return ret;
	}
	if (s->reads_on) {
		/* A destination resuming tries again from its connection
		 * set when its lanes fail: it knocks on the listening
		 * socket while we would wait here for the lanes. */
		ret = s->reads.ops->accept_reads(&s->reads, wait_ms,
						 resume ? s->lfd : -1);
		if (ret < 0)
			return srv_err(s, ret, "%s",
				       s->reads.ops->read_error(&s->reads));
	}
	/* With recovery on, the destination may come back here. */
	if (!s->recover_ms) {
		close(s->lfd);
		s->lfd = -1;
	}
	s->nr_bulk = nr_bulk;
	s->nr_conns = 1 + nr_bulk + prefetch;
	for (unsigned int i = 0; i < s->nr_conns; i++) {
		ret = wire_rx_start(&s->t, &s->conns[i].rx);
		if (ret < 0)
			return srv_err(s, ret, "receive: %s", strerror(-ret));
	}
	return 0;
}

/*
 * A peer that fails the key check or speaks no gmem is dropped and the wait
 * goes on: a stranger who reaches the port first must not be able to end
 * the migration. Only when no destination proved itself by the deadline is
 * the last refusal the answer.
 */
int gmem_server_accept(struct gmem_server *s, int wait_ms)
{
	uint64_t deadline = now_ns() + (uint64_t)wait_ms * 1000000ULL;
	int left_ms = wait_ms, refused = 0, ret;
	char why[sizeof(s->err)];

	if (s->nr_conns || s->lfd < 0)
		return -EALREADY;
	if (getrandom(&s->session, sizeof(s->session), 0) < 0)
		s->session = now_ns();
	for (;;) {
		uint64_t now;

		ret = srv_accept_set(s, left_ms, false);
		if (ret == -ETIMEDOUT && refused)
			return srv_err(s, refused, "%s; no other destination "
				       "within %d ms", why, wait_ms);
		if (ret != -EACCES && ret != -EPROTO)
			return ret;
		refused = ret;
		memcpy(why, s->err, sizeof(why));
		ret = srv_conns_reset(s);
		if (ret < 0)
			return srv_err(s, ret, "endpoint: %s", strerror(-ret));
		s->error = 0;
		now = now_ns();
		if (wait_ms >= 0 && now >= deadline)
			return srv_err(s, refused, "%s", why);
		if (wait_ms >= 0)
			left_ms = (int)((deadline - now + 999999) / 1000000);
	}
}
