// SPDX-License-Identifier: MIT
/*
 * gmem-pager - the page server: serves one region, page by page, to one
 * destination over TCP (post-copy paging: urgent requests first, the rest
 * pushed in address order) until the destination has every page and the
 * per-page digests agree. The region is a file's contents, or a live region
 * another process hands over a Unix socket (gmem_region_export()). With
 * --uffd-handler it serves a VMM's own faults instead (uffd-handler.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gmem.h>

#include "key.h"
#include "opt.h"
#include "transport-opt.h"
#include "uffd-handler.h"

struct pager_opts {
	const char *listen;
	const char *file;
	const char *unix_path;
	const char *uffd_handler;
	const char *connect;
	bool dirty_log;
	int wait_ms;
	enum transport_choice transport;
	const char *key_file;
	struct key key;        /* empty: serve without authentication */
	bool insecure;         /* --insecure: keyless off loopback */
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: gmem-pager --listen HOST:PORT (--file PATH | --unix PATH) [options]\n"
		"       gmem-pager --uffd-handler PATH (--file PATH | --connect HOST:PORT) [options]\n"
		"Serves a region to one destination (gmem_remote_connect()) over TCP,\n"
		"or serves the faults of a VMM that sends its userfaultfd.\n"
		"\n"
		"  -l, --listen HOST:PORT  TCP address to listen on (\"*:7000\", \"[::1]:0\";\n"
		"                          port 0 picks one; the chosen one is printed)\n"
		"  -f, --file PATH         serve the contents of a file (4 KiB pages;\n"
		"                          the last page is padded with zeros)\n"
		"  -u, --unix PATH         accept one region from a process that calls\n"
		"                          gmem_region_export() on a Unix socket at PATH\n"
		"  -H, --uffd-handler PATH external handler mode: accept one VMM on a\n"
		"                          Unix socket at PATH that sends a JSON list of\n"
		"                          mappings with its userfaultfd (Firecracker's\n"
		"                          page-fault handler protocol) and serve its\n"
		"                          faults from --file (a snapshot) or --connect\n"
		"  -c, --connect HOST:PORT with --uffd-handler: pages come from this\n"
		"                          page server\n"
		"  -d, --dirty-log         with --uffd-handler --file: log the VMM's\n"
		"                          writes (it must send its pagemap fd, as\n"
		"                          libgmem-vmm.so does); each SIGUSR1 prints\n"
		"                          the pages written since the last one\n"
		"  -w, --wait-ms MS        give up after MS ms without the peer\n"
		"                          connecting or sending a frame (30000;\n"
		"                          -1 no limit)\n"
		"  -t, --transport rdma|tcp  pages by one-sided RDMA READs of the\n"
		"                          region (HOST must be the address of an\n"
		"                          RDMA device's interface) or by TCP\n"
		"                          (default: rdma when an RDMA device exists,\n"
		"                          falling back to tcp; the choice is printed)\n"
		"  -k, --key-file PATH     pre-shared key (16..256 bytes, file mode 600;\n"
		"                          else the GMEM_KEY variable): the peer must\n"
		"                          prove it (HMAC-SHA256 challenge) before any\n"
		"                          page moves, and every frame is encrypted;\n"
		"                          make one with `head -c 32 /dev/urandom\n"
		"                          > KEY; chmod 600 KEY`\n"
		"      --insecure          allow a non-loopback --listen/--connect\n"
		"                          without a key (pages in the clear)\n"
		"  -h, --help              show this help\n"
		"\n"
		"Logs one line per connection event on stdout; exits 0 once the\n"
		"destination reports every page present with equal digests, 1 with a\n"
		"message on stderr on any error (a HOST that does not resolve too),\n"
		"2 for bad options (one line names the option).\n");
}

static void parse_opts(int argc, char **argv, struct pager_opts *o)
{
	static const char shorts[] = ":l:f:u:H:c:dw:t:k:h";
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "file", required_argument, NULL, 'f' },
		{ "unix", required_argument, NULL, 'u' },
		{ "uffd-handler", required_argument, NULL, 'H' },
		{ "connect", required_argument, NULL, 'c' },
		{ "dirty-log", no_argument, NULL, 'd' },
		{ "wait-ms", required_argument, NULL, 'w' },
		{ "transport", required_argument, NULL, 't' },
		{ "key-file", required_argument, NULL, 'k' },
		{ "insecure", no_argument, NULL, 'I' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	char err[256];
	int c;

	*o = (struct pager_opts){ .wait_ms = 30000 };
	opterr = 0;
	while ((c = getopt_long(argc, argv, shorts, longopts, NULL)) != -1) {
		switch (c) {
		case 'l': o->listen = optarg; break;
		case 'f': o->file = optarg; break;
		case 'u': o->unix_path = optarg; break;
		case 'H': o->uffd_handler = optarg; break;
		case 'c': o->connect = optarg; break;
		case 'd': o->dirty_log = true; break;
		case 'w': o->wait_ms = opt_ms("--wait-ms", optarg, 1); break;
		case 't': o->transport = transport_opt_parse(optarg); break;
		case 'k': o->key_file = optarg; break;
		case 'I': o->insecure = true; break;
		case 'h': usage(stdout); exit(0);
		default: opt_getopt_fail(c, argv, longopts);
		}
	}
	if (optind != argc)
		opt_fail("unexpected argument '%s'", argv[optind]);
	if (o->uffd_handler) {
		if (!o->file == !o->connect || o->listen || o->unix_path)
			opt_fail("--uffd-handler needs one of --file/--connect");
		if (o->dirty_log && !o->file)
			opt_fail("--dirty-log needs --uffd-handler --file");
	} else if (o->dirty_log) {
		opt_fail("--dirty-log needs --uffd-handler --file");
	} else if (!o->listen || !o->file == !o->unix_path || o->connect) {
		opt_fail("need --listen and one of --file/--unix");
	}
	if (o->listen)
		opt_hostport("--listen", o->listen, true);
	if (o->connect)
		opt_hostport("--connect", o->connect, false);
	if (key_load(o->key_file, &o->key, err, sizeof(err)) < 0) {
		fprintf(stderr, "gmem-pager: %s\n", err);
		exit(OPT_EXIT_USAGE);
	}
	if (key_require(&o->key, o->listen ? "--listen" : "--connect",
			o->listen ? o->listen : o->connect, o->insecure, err,
			sizeof(err)) < 0) {
		fprintf(stderr, "gmem-pager: %s\n", err);
		exit(OPT_EXIT_USAGE);
	}
}

/* A memfd-backed region holding the file's bytes. */
static int region_from_file(const char *path, struct gmem_region **out)
{
	struct gmem_region_params p = { .page_size = GMEM_PAGE_4K,
					.name = "gmem-pager" };
	struct stat st;
	uint64_t done = 0;
	uint8_t *base;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		ret = -errno;
		fprintf(stderr, "gmem-pager: %s: %s\n", path, strerror(errno));
		goto out;
	}
	p.nr_pages = ((uint64_t)st.st_size + 4095) / 4096;
	ret = p.nr_pages ? gmem_region_create(&p, out) : -EINVAL;
	if (ret < 0) {
		fprintf(stderr, "gmem-pager: %s: region of %llu pages: %s\n",
			path, (unsigned long long)p.nr_pages, strerror(-ret));
		goto out;
	}
	base = gmem_region_addr(*out);
	while (done < (uint64_t)st.st_size) {
		ssize_t n = pread(fd, base + done, st.st_size - done, done);

		if (n <= 0) {
			ret = n < 0 ? -errno : -EIO;
			fprintf(stderr, "gmem-pager: %s: read: %s\n", path,
				strerror(-ret));
			gmem_region_destroy(*out);
			goto out;
		}
		done += n;
	}
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

/* Waits for one process to export its region on a Unix socket. */
static int region_from_unix(const char *path, struct gmem_region **out)
{
	int lfd, fd, ret;

	lfd = listen_unix(path);
	if (lfd < 0)
		return lfd;
	printf("gmem-pager: waiting for a region on %s\n", path);
	fflush(stdout);
	fd = accept(lfd, NULL, NULL);
	if (fd < 0) {
		ret = -errno;
		fprintf(stderr, "gmem-pager: %s: accept: %s\n", path,
			strerror(errno));
		goto out;
	}
	ret = gmem_region_import(fd, out);
	close(fd);
	if (ret < 0)
		fprintf(stderr, "gmem-pager: %s: import: %s\n", path,
			strerror(-ret));
out:
	if (lfd >= 0)
		close(lfd);
	unlink(path);
	return ret;
}

/* Offers RDMA when asked (an error then ends the program) or by default
 * (a failure falls back to TCP); says which transport serves. */
static int offer_rdma(struct gmem_server *srv, const struct pager_opts *o)
{
	int ret = 0;

	if (transport_opt_rdma(o->transport))
		ret = gmem_server_offer_rdma(srv, o->listen);
	if (ret < 0 && o->transport == TRANSPORT_RDMA) {
		fprintf(stderr, "gmem-pager: --transport rdma: %s: %s\n",
			strerror(-ret), gmem_server_error(srv));
		return ret;
	}
	if (ret < 0)
		printf("gmem-pager: no RDMA (%s: %s): using tcp\n",
		       strerror(-ret), gmem_server_error(srv));
	printf("gmem-pager: transport %s\n", gmem_server_transport(srv));
	fflush(stdout);
	return 0;
}

static int serve(struct gmem_server *srv, const struct pager_opts *o)
{
	struct gmem_remote_stats st;
	int ret;

	ret = gmem_server_accept(srv, o->wait_ms);
	if (ret < 0) {
		fprintf(stderr, "gmem-pager: accept: %s: %s\n", strerror(-ret),
			gmem_server_error(srv));
		return ret;
	}
	printf("gmem-pager: destination connected; transport %s\n",
	       gmem_server_transport(srv));
	fflush(stdout);
	ret = gmem_server_serve(srv, o->wait_ms);
	gmem_server_stats(srv, &st);
	printf("gmem-pager: destination done: %s; urgent %llu pushed %llu "
	       "prefetched %llu requests %llu bytes %llu mismatches %llu\n",
	       ret ? "FAILED" : "complete, digests equal",
	       (unsigned long long)st.urgent_pages,
	       (unsigned long long)st.pushed_pages,
	       (unsigned long long)st.prefetched_pages,
	       (unsigned long long)st.requests, (unsigned long long)st.bytes,
	       (unsigned long long)st.mismatches);
	if (ret < 0)
		fprintf(stderr, "gmem-pager: serve: %s: %s\n", strerror(-ret),
			gmem_server_error(srv));
	return ret;
}

int main(int argc, char **argv)
{
	struct gmem_region *r = NULL;
	struct gmem_server *srv = NULL;
	struct pager_opts o;
	int ret;

	parse_opts(argc, argv, &o);
	if ((o.listen && opt_resolve("--listen", o.listen, true)) ||
	    (o.connect && opt_resolve("--connect", o.connect, false)))
		return 1;
	if (o.uffd_handler)
		return uffd_handler_run(&(struct uffd_handler_opts){
			.sock_path = o.uffd_handler, .file = o.file,
			.connect = o.connect, .wait_ms = o.wait_ms,
			.dirty_log = o.dirty_log,
			.key = o.key.len ? o.key.bytes : NULL,
			.key_len = o.key.len });
	ret = o.file ? region_from_file(o.file, &r)
		     : region_from_unix(o.unix_path, &r);
	if (ret < 0)
		return 1;
	ret = gmem_server_listen(r, o.listen, &srv);
	if (ret < 0) {
		fprintf(stderr, "gmem-pager: listen %s: %s\n", o.listen,
			strerror(-ret));
		gmem_region_destroy(r);
		return 1;
	}
	if (o.key.len)
		ret = gmem_server_set_key(srv, o.key.bytes, o.key.len);
	if (ret < 0) {
		fprintf(stderr, "gmem-pager: key from %s: %s\n", o.key.origin,
			strerror(-ret));
		gmem_server_destroy(srv);
		gmem_region_destroy(r);
		return 1;
	}
	printf("gmem-pager: serving %llu pages of %u bytes on port %u\n",
	       (unsigned long long)gmem_region_nr_pages(r),
	       gmem_region_page_size(r), gmem_server_port(srv));
	fflush(stdout);
	ret = offer_rdma(srv, &o);
	if (ret == 0)
		ret = serve(srv, &o);
	gmem_server_destroy(srv);
	gmem_region_destroy(r);
	return ret < 0 ? 1 : 0;
}
