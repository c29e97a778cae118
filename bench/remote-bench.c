// SPDX-License-Identifier: MIT
/*
 * remote-bench.c - remote (post-copy) paging over TCP on loopback against its
 * floors, all measured in one run: fault latency p50/p99 with fault-around 1
 * and 16 vs the floor (a bare userfaultfd fault + a 4 KiB TCP round trip),
 * and background push bandwidth (into a region whose page cache the push
 * fills, and into one allocated ahead) vs a plain socket blast, and vs a
 * blast from and into memory of the push's size. The page server is
 * a child process. With --rdma ADDR the pages move by RDMA READ at ADDR (an
 * RDMA device's address); bench/rdma-perftest puts those figures next to
 * perftest's. JSON lines on stdout; never passes or fails.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gmem.h>

#include "floor.h"
#include "opt.h"
#include "stats.h"

#define PAGE 4096UL
#define BLAST_CHUNK (256UL << 10)

struct bench_opts {
	unsigned int samples;  /* faults (and round trips) per figure */
	uint64_t push_mib;     /* region pushed for the bandwidth figure */
	unsigned int repeat;   /* floor + fault sets, one after the other */
	unsigned int bulk;     /* push connections, and raw blast streams */
	const char *rdma_ip;   /* RDMA at this address; NULL: TCP loopback */
	bool thp;              /* push into a region of transparent huge pages */
	bool push_only;        /* no fault latencies (bench/link-push) */
	bool encrypt;          /* both ends keyed: every frame sealed */
};

/* --encrypt: the key both ends hold (a bench's, not a secret). */
static const char *bench_key;
#define BENCH_KEY "remote-bench fixed key, 32 byte"

/* --- floor 1: a bare userfaultfd fault (UFFDIO_COPY from memory) -------- */

static int floor_fault(unsigned int n, struct samples *lat)
{
	uint8_t *zero = calloc(1, PAGE);
	struct floor_map m;
	int ret = zero ? floor_map(&m, n * PAGE, false, zero, PAGE, 1) : -ENOMEM;

	for (unsigned int i = 0; ret == 0 && i < n; i++) {
		uint64_t t0 = bench_now_ns();

		(void)*(volatile uint8_t *)(m.base + i * PAGE);
		samples_add(lat, bench_now_ns() - t0);
	}
	if (ret == 0)
		floor_unmap(&m);
	free(zero);
	return ret;
}

/* --- floor 2 and raw bandwidth: plain sockets on loopback --------------- */

static int tcp_pair(int fds[2])
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(l, 1) < 0 || getsockname(l, (struct sockaddr *)&a, &sl) < 0)
		return -errno;
	fds[0] = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(fds[0], (struct sockaddr *)&a, sizeof(a)) < 0)
		return -errno;
	fds[1] = accept(l, NULL, NULL);
	close(l);
	setsockopt(fds[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fds[1], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fds[1] < 0 ? -errno : 0;
}

/* Answers each 32-byte request with a 4 KiB page, as a page server would. */
static void *echo_page(void *arg)
{
	int fd = *(int *)arg;
	uint8_t req[32], page[PAGE] = { 0 };

	while (recv(fd, req, sizeof(req), MSG_WAITALL) == sizeof(req))
		if (send(fd, page, sizeof(page), 0) != sizeof(page))
			break;
	return NULL;
}

static int floor_rtt(unsigned int n, struct samples *lat)
{
	uint8_t req[32] = { 0 }, page[PAGE];
	pthread_t tid;
	int fds[2], ret = tcp_pair(fds);

	if (ret < 0)
		return ret;
	pthread_create(&tid, NULL, echo_page, &fds[1]);
	for (unsigned int i = 0; i < n && ret == 0; i++) {
		uint64_t t0 = bench_now_ns();

		if (send(fds[0], req, sizeof(req), 0) != sizeof(req) ||
		    recv(fds[0], page, sizeof(page), MSG_WAITALL) != sizeof(page))
			ret = -EIO;
		samples_add(lat, bench_now_ns() - t0);
	}
	shutdown(fds[0], SHUT_RDWR);
	pthread_join(tid, NULL);
	close(fds[0]);
	close(fds[1]);
	return ret;
}

/* One stream of a blast. With @in and @out (@bytes each, touched before the
 * clock starts) every chunk comes from and lands in memory of its own, as
 * a push's pages do; without, one chunk-sized buffer, hot in the cache,
 * serves every send and every receive: the link alone. */
struct blast {
	int fds[2];
	uint64_t bytes;
	uint8_t *in, *out;
	pthread_t sender, receiver;
};

static void *blast_send(void *arg)
{
	struct blast *b = arg;
	uint8_t *buf = b->in ? NULL : calloc(1, BLAST_CHUNK);

	for (uint64_t done = 0; done < b->bytes; done += BLAST_CHUNK) {
		const uint8_t *p = b->in ? b->in + done : buf;

		if (!p || send(b->fds[1], p, BLAST_CHUNK, 0) != (ssize_t)BLAST_CHUNK)
			break;
	}
	free(buf);
	return NULL;
}

static void *blast_recv(void *arg)
{
	struct blast *b = arg;
	uint8_t *buf = b->out ? NULL : malloc(BLAST_CHUNK);
	uint64_t got = 0;

	while (got < b->bytes) {
		uint8_t *p = b->out ? b->out + got : buf;
		uint64_t room = b->out ? b->bytes - got : BLAST_CHUNK;
		ssize_t n;

		if (!p)
			break;
		n = recv(b->fds[0], p, room < BLAST_CHUNK ? room : BLAST_CHUNK,
			 0);
		if (n <= 0)
			break;
		got += n;
	}
	free(buf);
	return NULL;
}

/* @bytes of memory written once, so that no page fault is timed; NULL on
 * failure. */
static uint8_t *blast_mem(uint64_t bytes)
{
	uint8_t *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	memset(p, 0x5a, bytes);
	return p;
}

/* A plain socket blast of @bytes over @streams connections at once, a
 * sending and a receiving thread each, GB/s: from and into one small
 * buffer (the raw link bandwidth), or, with @mem, from and into @bytes of
 * memory each way (the link and the memory a push must write). */
static double raw_blast(uint64_t bytes, unsigned int streams, bool mem)
{
	struct blast b[GMEM_MAX_BULK] = { 0 };
	unsigned int n = 0;
	uint64_t t0;
	double gbps;

	for (; n < streams; n++) {
		b[n] = (struct blast){ .bytes = bytes / streams / BLAST_CHUNK *
						BLAST_CHUNK };
		if (mem && (!(b[n].in = blast_mem(b[n].bytes)) ||
			    !(b[n].out = blast_mem(b[n].bytes))))
			break;
		if (tcp_pair(b[n].fds) < 0)
			break;
	}
	t0 = bench_now_ns();
	for (unsigned int i = 0; i < n; i++) {
		pthread_create(&b[i].sender, NULL, blast_send, &b[i]);
		pthread_create(&b[i].receiver, NULL, blast_recv, &b[i]);
	}
	for (unsigned int i = 0; i < n; i++)
		pthread_join(b[i].receiver, NULL);
	t0 = bench_now_ns() - t0;
	gbps = n == streams ? n * b[0].bytes / (double)t0 : 0;
	for (unsigned int i = 0; i < streams; i++) {
		if (i < n) {
			pthread_join(b[i].sender, NULL);
			close(b[i].fds[0]);
			close(b[i].fds[1]);
		}
		if (b[i].in)
			munmap(b[i].in, b[i].bytes);
		if (b[i].out)
			munmap(b[i].out, b[i].bytes);
	}
	return gbps;
}

/* --- the page server: a child process serving one destination ----------- */

static pid_t server_fork(uint64_t nr_pages, const char *rdma_ip,
			 uint16_t *port)
{
	int pfd[2];
	pid_t pid;

	if (pipe(pfd) < 0)
		return -errno;
	pid = fork();
	if (pid == 0) {
		struct gmem_region_params p = { .nr_pages = nr_pages };
		struct gmem_region *r;
		struct gmem_server *srv;
		uint16_t pt = 0;
		char addr[80];

		snprintf(addr, sizeof(addr), "%s:0",
			 rdma_ip ? rdma_ip : "127.0.0.1");
		if (gmem_region_create(&p, &r) == 0) {
			memset(gmem_region_addr(r), 0x5a, nr_pages * PAGE);
			if (gmem_server_listen(r, addr, &srv) == 0 &&
			    (!bench_key || gmem_server_set_key(srv, bench_key,
						strlen(bench_key)) == 0) &&
			    (!rdma_ip || gmem_server_offer_rdma(srv, addr) == 0))
				pt = gmem_server_port(srv);
		}
		if (write(pfd[1], &pt, sizeof(pt)) != sizeof(pt) || !pt)
			_exit(1);
		if (gmem_server_accept(srv, 10000) == 0)
			gmem_server_serve(srv, 30000);
		_exit(0);
	}
	close(pfd[1]);
	if (pid < 0 || read(pfd[0], port, sizeof(*port)) != sizeof(*port) ||
	    !*port)
		pid = -EIO;
	close(pfd[0]);
	return pid;
}

/* What dest_open() does besides connecting. */
enum {
	DEST_ATTACH = 1 << 0,   /* attach the remote source */
	DEST_PREALLOC = 1 << 1, /* gmem_region_prealloc() first */
};

struct dest {
	struct gmem_remote *rm;
	struct gmem_region *r;
	struct gmem_source *src;
	pid_t server;
};

/* Connects to a fresh server child, doing what @how says (DEST_*). The
 * region is made (and its page cache allocated, with DEST_PREALLOC) before
 * connecting: a destination prepares while the source still runs. */
static int dest_open(struct dest *d, uint64_t nr_pages, uint32_t flags,
		     uint32_t region_flags, unsigned int fa, unsigned int bulk,
		     unsigned int how, const char *rdma_ip)
{
	struct gmem_region_params p = {
		.nr_pages = nr_pages,
		.flags = GMEM_REGION_MISSING | region_flags,
	};
	struct gmem_remote_params rp = {
		.flags = flags, .nr_bulk = bulk, .key = bench_key,
		.key_len = bench_key ? strlen(bench_key) : 0,
	};
	struct gmem_fault_params fp = { .nr_threads = 1, .fault_around = fa };
	char addr[80];
	uint16_t port;
	int ret;

	memset(d, 0, sizeof(*d));
	ret = gmem_region_create(&p, &d->r);
	if (ret == 0 && (how & DEST_PREALLOC))
		ret = gmem_region_prealloc(d->r);
	if (ret < 0)
		return ret;
	d->server = server_fork(nr_pages, rdma_ip, &port);
	if (d->server < 0)
		return d->server;
	snprintf(addr, sizeof(addr), "%s:%u", rdma_ip ? rdma_ip : "127.0.0.1",
		 port);
	if (rdma_ip)
		rp.flags |= GMEM_REMOTE_RDMA;
	ret = gmem_remote_connect(addr, &rp, &d->rm);
	if (ret == 0)
		ret = gmem_remote_precopy(d->rm, d->r, 10000) < 0 ? -EIO : 0;
	if (ret == 0)
		ret = gmem_remote_source(d->rm, &d->src);
	if (ret == 0 && (how & DEST_ATTACH))
		ret = gmem_region_attach(d->r, d->src, &fp);
	return ret;
}

static void dest_close(struct dest *d)
{
	if (d->r && d->src)
		gmem_region_detach(d->r); /* -ENOENT when never attached */
	gmem_source_destroy(d->src);
	gmem_remote_destroy(d->rm);
	gmem_region_destroy(d->r);
	if (d->server > 0) {
		kill(d->server, SIGTERM);
		waitpid(d->server, NULL, 0);
	}
}

/* Touches @n fault-around windows in a shuffled order, with no push: each
 * touch is one remote fault; its latency is one sample. */
static int remote_faults(unsigned int n, unsigned int fa, bool prealloc,
			 struct samples *lat, struct samples *svc,
			 const char *rdma_ip)
{
	uint64_t nr_pages = (uint64_t)n * 16, *order, *ns;
	struct dest d;
	uint8_t *base;
	int64_t got;
	int ret = dest_open(&d, nr_pages, GMEM_REMOTE_ON_DEMAND, 0, fa, 1,
			    DEST_ATTACH | (prealloc ? DEST_PREALLOC : 0),
			    rdma_ip);

	order = malloc(n * sizeof(*order));
	ns = malloc(n * sizeof(*ns));
	if (ret == 0 && (!order || !ns))
		ret = -ENOMEM;
	for (unsigned int i = 0; ret == 0 && i < n; i++)
		order[i] = i * 16;
	for (unsigned int i = n - 1; ret == 0 && i > 0; i--) {
		unsigned int j = rand() % (i + 1);
		uint64_t t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
	base = ret == 0 ? gmem_region_addr(d.r) : NULL;
	for (unsigned int i = 0; ret == 0 && i < n; i++) {
		uint64_t t0 = bench_now_ns();

		(void)*(volatile uint8_t *)(base + order[i] * PAGE);
		samples_add(lat, bench_now_ns() - t0);
	}
	got = ret == 0 ? gmem_remote_latencies(d.rm, ns, n) : 0;
	for (int64_t i = 0; i < got; i++)
		samples_add(svc, ns[i]);
	dest_close(&d);
	free(order);
	free(ns);
	return ret;
}

/* Background push only: attach, then time until every page is present. */
static int remote_push(uint64_t nr_pages, const struct bench_opts *o,
		       bool prealloc, double *gbps, int *verified)
{
	struct dest d;
	uint64_t t0;
	int ret = dest_open(&d, nr_pages, 0, o->thp ? GMEM_REGION_THP : 0, 16,
			    o->bulk, prealloc ? DEST_PREALLOC : 0, o->rdma_ip);

	t0 = bench_now_ns();
	if (ret == 0)
		ret = gmem_region_attach(d.r, d.src, NULL);

	/* Each look walks the whole present bitmap: polled every 200 us, this
	 * thread used most of a core during a 3 GiB push, taken from the
	 * receive path on 2 cores. 1 ms is under 1% of a push. */
	while (ret == 0 && gmem_region_nr_present(d.r) < nr_pages)
		usleep(1000);
	*gbps = nr_pages * PAGE / (double)(bench_now_ns() - t0);
	*verified = ret == 0 ? gmem_remote_wait(d.rm, 60000) : ret;
	dest_close(&d);
	return ret;
}

static double us(uint64_t ns)
{
	return ns / 1000.0;
}

static void add_d(json_object *o, const char *k, double v)
{
	json_object_object_add(o, k, json_object_new_double(v));
}

static json_object *line(const char *what, const struct bench_opts *o)
{
	json_object *j = json_object_new_object();

	json_object_object_add(j, "bench", json_object_new_string("remote"));
	json_object_object_add(j, "what", json_object_new_string(what));
	json_object_object_add(j, "link", json_object_new_string(
				       o->rdma_ip ? "rdma" : "loopback"));
	json_object_object_add(j, "encrypted",
			       json_object_new_boolean(o->encrypt));
	return j;
}

static int bench_faults(const struct bench_opts *o)
{
	struct samples fl = { 0 }, rtt = { 0 };
	double floor50, floor99;
	int ret = floor_fault(o->samples, &fl);

	if (ret == 0)
		ret = floor_rtt(o->samples, &rtt);
	if (ret < 0)
		return ret;
	floor50 = samples_pct(&fl, 50) + samples_pct(&rtt, 50);
	floor99 = samples_pct(&fl, 99) + samples_pct(&rtt, 99);
	json_object *f = line("floor", o);
	add_d(f, "uffd_fault_p50_us", us(samples_pct(&fl, 50)));
	add_d(f, "uffd_fault_p99_us", us(samples_pct(&fl, 99)));
	add_d(f, "tcp_rtt_4k_p50_us", us(samples_pct(&rtt, 50)));
	add_d(f, "tcp_rtt_4k_p99_us", us(samples_pct(&rtt, 99)));
	add_d(f, "floor_p50_us", us(floor50));
	add_d(f, "floor_p99_us", us(floor99));
	bench_emit(f);
	/* Fault-around 1 and 16 into a region allocated as pages arrive, then
	 * both into one allocated ahead (gmem-migrate's default). */
	for (unsigned int i = 0; i < 4; i++) {
		unsigned int fa = i & 1 ? 16 : 1;
		bool prealloc = i >= 2;
		struct samples lat = { 0 }, svc = { 0 };
		json_object *j;

		ret = remote_faults(o->samples, fa, prealloc, &lat, &svc,
				    o->rdma_ip);
		if (ret < 0)
			return ret;
		j = line("fault", o);
		json_object_object_add(j, "fault_around",
				       json_object_new_int(fa));
		json_object_object_add(j, "prealloc",
				       json_object_new_boolean(prealloc));
		json_object_object_add(j, "samples",
				       json_object_new_int64(lat.n));
		add_d(j, "p50_us", us(samples_pct(&lat, 50)));
		add_d(j, "p99_us", us(samples_pct(&lat, 99)));
		add_d(j, "service_p50_us", us(samples_pct(&svc, 50)));
		add_d(j, "service_p99_us", us(samples_pct(&svc, 99)));
		add_d(j, "floor_p50_us", us(floor50));
		add_d(j, "ratio_p50_to_floor", samples_pct(&lat, 50) / floor50);
		add_d(j, "ratio_p99_to_floor", samples_pct(&lat, 99) / floor99);
		bench_emit(j);
		samples_free(&lat);
		samples_free(&svc);
	}
	samples_free(&fl);
	samples_free(&rtt);
	return 0;
}

/* The push into a region whose page cache post-copy fills, then into one
 * allocated ahead (gmem_region_prealloc()), beside one raw blast. */
static int bench_push(const struct bench_opts *o)
{
	uint64_t bytes = o->push_mib << 20;
	double raw = raw_blast(bytes, o->bulk, false);
	double raw_mem = raw_blast(bytes, o->bulk, true);

	for (int prealloc = 0; prealloc <= 1; prealloc++) {
		double push = 0;
		int verified = 0;
		int ret = remote_push(bytes / PAGE, o, prealloc, &push,
				      &verified);
		json_object *j;

		if (ret < 0)
			return ret;
		j = line("push", o);
		json_object_object_add(j, "bytes", json_object_new_int64(bytes));
		json_object_object_add(j, "streams",
				       json_object_new_int(o->bulk));
		json_object_object_add(j, "thp", json_object_new_boolean(o->thp));
		json_object_object_add(j, "prealloc",
				       json_object_new_boolean(prealloc));
		add_d(j, "push_gbytes_per_s", push);
		add_d(j, "raw_gbytes_per_s", raw);
		add_d(j, "ratio_to_raw", raw > 0 ? push / raw : 0);
		add_d(j, "raw_mem_gbytes_per_s", raw_mem);
		add_d(j, "ratio_to_raw_mem", raw_mem > 0 ? push / raw_mem : 0);
		json_object_object_add(j, "digests_equal",
				       json_object_new_boolean(verified == 0));
		bench_emit(j);
	}
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: remote-bench [--samples N] [--push-mib MIB] [--repeat N]\n"
		   "                    [--bulk N] [--thp] [--rdma ADDR] [--push-only]\n"
		   "                    [--encrypt]\n"
		   "Remote fault latency (fault-around 1 and 16, the region\n"
		   "allocated as pages arrive and ahead) vs a bare uffd\n"
		   "fault + 4 KiB TCP round trip, and push bandwidth over N bulk\n"
		   "connections (default 1), into a region allocated as pages\n"
		   "arrive and into one allocated ahead, vs a plain socket blast\n"
		   "over as many streams (raw) and a blast from and into memory\n"
		   "of the push's size (raw_mem), on loopback, in one run. JSON\n"
		   "lines on stdout.\n"
		   "  --rdma ADDR  pages by RDMA READ at ADDR (an RDMA device's\n"
		   "               IP address) instead of TCP on loopback\n"
		   "  --thp        push into a region of transparent huge pages\n"
		   "  --push-only  the push and the blasts, no fault latencies\n"
		   "  --bulk N     bulk connections, 1..%u\n"
		   "  --encrypt    both ends hold a (fixed) key: every frame\n"
		   "               encrypted and authenticated\n"
		   "  -h, --help   this text\n", GMEM_MAX_BULK);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "samples", required_argument, NULL, 's' },
		{ "push-mib", required_argument, NULL, 'p' },
		{ "repeat", required_argument, NULL, 'r' },
		{ "bulk", required_argument, NULL, 'b' },
		{ "rdma", required_argument, NULL, 'R' },
		{ "thp", no_argument, NULL, 't' },
		{ "push-only", no_argument, NULL, 'P' },
		{ "encrypt", no_argument, NULL, 'E' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct bench_opts o = { .samples = 2000, .push_mib = 256, .repeat = 3,
				.bulk = 1 };
	static const char shorts[] = ":s:p:r:b:th";
	int c, ret = 0;

	opterr = 0;
	while ((c = getopt_long(argc, argv, shorts, longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			o.samples = opt_int("--samples", optarg, 1, UINT_MAX);
			break;
		case 'p':
			o.push_mib = opt_int("--push-mib", optarg, 1,
					     LLONG_MAX >> 20);
			break;
		case 'r':
			o.repeat = opt_int("--repeat", optarg, 1, UINT_MAX);
			break;
		case 'b':
			o.bulk = opt_int("--bulk", optarg, 1, GMEM_MAX_BULK);
			break;
		case 'R': o.rdma_ip = optarg; break;
		case 't': o.thp = true; break;
		case 'P': o.push_only = true; break;
		case 'E': o.encrypt = true; bench_key = BENCH_KEY; break;
		case 'h': usage(stdout); return 0;
		default: opt_getopt_fail(c, argv, longopts);
		}
	}
	if (optind < argc)
		opt_fail("unexpected argument '%s'", argv[optind]);
	srand(1);
	for (unsigned int i = 0; i < o.repeat && ret == 0 && !o.push_only; i++)
		ret = bench_faults(&o);
	if (ret == 0)
		ret = bench_push(&o);
	if (ret < 0)
		fprintf(stderr, "remote-bench: %s\n", strerror(-ret));
	return ret < 0;
}
