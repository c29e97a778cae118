// SPDX-License-Identifier: MIT
/*
 * gmem-migrate.c - the operator's command: live-migrates a workload's region
 * between two hosts. One instance runs on each side; options, --help and
 * the exit codes live here, the work in migrate-run.c.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate-cli.h"
#include "opt.h"
#include "transport-opt.h"

static void usage(FILE *f)
{
	fprintf(f,
"usage: gmem-migrate source --control PATH --listen HOST:PORT [options]\n"
"       gmem-migrate dest   --control PATH --connect HOST:PORT [options]\n"
"       gmem-migrate source --qmp PATH --qemu-uri URI --listen HOST:PORT ...\n"
"       gmem-migrate dest   --qmp PATH --qemu-uri URI --uffd-socket PATH\n"
"                           --connect HOST:PORT [options]\n"
"\n"
"Live-migrates the GPU memory region of a workload (its monitor socket at\n"
"--control, e.g. gmem-replay's) from the source host to the destination\n"
"host. Run `source` on the source host and `dest` on the destination host,\n"
"whose workload waits paused (gmem-replay --incoming).\n"
"\n"
"  -C, --control PATH     the workload's control socket\n"
"  --qmp PATH             or a QEMU's QMP socket: its shared memory backend\n"
"                         goes by gmem post-copy (or stop-and-copy), its\n"
"                         device state by QEMU's own migration\n"
"                         (x-ignore-shared) to --qemu-uri\n"
"  --qemu-uri URI         --qmp: where the destination QEMU receives its\n"
"                         device state (tcp:HOST:PORT; the same both sides)\n"
"  --uffd-socket PATH     dest --qmp: where the destination QEMU's\n"
"                         libgmem-vmm.so hands its memory over (start gmem\n"
"                         first; QEMU with -incoming defer)\n"
"  --memdev ID            --qmp: the backend to migrate (default: the\n"
"                         QEMU's one shared memdev)\n"
"  -l, --listen HOST:PORT source: where the destination connects\n"
"  -c, --connect HOST:PORT dest: the source's --listen address\n"
"  -m, --mode MODE        source: auto (default: pre-copy while it converges,\n"
"                         then post-copy), postcopy, precopy, hybrid,\n"
"                         stop-and-copy (not on dest: it follows the source)\n"
"  --max-rounds N         pre-copy rounds after the full pass (precopy, auto:\n"
"                         30, hybrid: 2)\n"
"  --downtime-ms MS       precopy, auto: target freeze (300)\n"
"  --abort-unconverged    precopy: cancel instead of forcing the switchover\n"
"  --bulk N               bulk connections, 1..%u (2; 4 with a key)\n"
"  --push-order hot|address  source: what the post-copy push sends first:\n"
"                         hot (default) the pages the dirty log saw written\n"
"                         last before the pause, then the rest in address\n"
"                         order; address: address order only\n"
"  --hot-epoch-ms MS      source, postcopy with --push-order hot: how long\n"
"                         the dirty log watches the workload before the\n"
"                         pause for them, about one step (200; 1..60000)\n"
"  -t, --transport rdma|tcp  post-copy pages by RDMA READ (source: HOST is\n"
"                         an RDMA device's address) or TCP; both sides must\n"
"                         agree (default: rdma when this host has an RDMA\n"
"                         device, else tcp; the report's \"transport\")\n"
"  --threads N            dest: fault handler threads, 1..%u (2)\n"
"  --fault-around N       dest: pages per urgent request, a power of 2,\n"
"                         1..%u (16)\n"
"  --numa-node N          dest: region pages, staging buffers and fault\n"
"                         handlers on NUMA node N (default: no placement)\n"
"  --pci ADDR             dest: on the node of PCI device ADDR (the GPU,\n"
"                         DDDD:BB:DD.F); a device without a node is node 0\n"
"                         on a one-node machine\n"
"  --no-prealloc          dest: do not allocate the region's page cache\n"
"                         before connecting (default: allocate it, so that\n"
"                         post-copy copies pages into memory already there)\n"
"  -w, --wait-ms MS       give up on a silent peer, and dest: on a source\n"
"                         not listening yet (30000; -1 no limit)\n"
"  --recover-ms MS        post-copy recovery: when the link breaks after the\n"
"                         switchover, pause and let the destination reconnect\n"
"                         for up to MS ms, both sides (30000; 0 off: fail at\n"
"                         once; -1 no limit); the source keeps every page\n"
"  -k, --key-file PATH    pre-shared key (16..256 bytes, file mode 600; else\n"
"                         the GMEM_KEY variable): both sides must prove it\n"
"                         (HMAC-SHA256 challenge) before any page moves, and\n"
"                         every frame is encrypted (AES-256-GCM or\n"
"                         XChaCha20-Poly1305); make one with\n"
"                         `head -c 32 /dev/urandom > KEY; chmod 600 KEY`\n"
"  --insecure             allow a non-loopback --listen/--connect without a\n"
"                         key: pages in the clear, any peer served\n"
"  --observe-ms MS        dest: watch the workload after completion (3000)\n"
"  --verify               dest: the workload checks every page at the end\n"
"  --keep-source          source: leave the source workload running/paused\n"
"                         (default: tell it to quit once the pages are safe)\n"
"  --json FILE            also write the final report to FILE\n"
"  -q, --quiet            no progress line\n"
"  -h, --help             this text\n"
"\n"
"Prints a progress line on stderr and one JSON report on stdout.\n"
"Exit status: 0 migrated and verified; 1 internal error; 2 bad options\n"
"(one line names the option); 3 workload control failed; 4 network or peer\n"
"failure (a HOST that does not resolve too); 5 pages differ after\n"
"migration; 6 pre-copy did not converge (--abort-unconverged); 7 the peer\n"
"failed authentication (another key, or none); 8 the link broke during\n"
"post-copy and the peer did not come back within --recover-ms.\n",
		GMEM_MAX_BULK, GMEM_MAX_THREADS, GMEM_MAX_FAULT_AROUND);
}

/* --numa-node N, or the node of --pci ADDR from sysfs. */
static void parse_node(const char *node, const char *pci, int *out)
{
	if (node && pci)
		opt_fail("--numa-node or --pci, not both");
	if (node) {
		/* Whether the node exists, gmem_region_set_numa_node() says. */
		*out = opt_int("--numa-node", node, 0, INT_MAX);
		return;
	}
	*out = gmem_numa_node_of_pci(NULL, pci);
	if (*out == -ENODATA && gmem_numa_nodes() == 1) {
		fprintf(stderr, "gmem-migrate: PCI %s has no NUMA node; this machine has one: node 0\n",
			pci);
		*out = 0;
	}
	if (*out < 0) {
		fprintf(stderr, "gmem-migrate: --pci %s: %s\n", pci,
			*out == -ENODATA ? "the device has no NUMA node (numa_node -1): give --numa-node" :
			*out == -EINVAL ? "expected a PCI address DDDD:BB:DD.F" :
			strerror(-*out));
		exit(EXIT_USAGE);
	}
}

static void parse_key(struct migrate_opts *o)
{
	char err[256];

	if (key_load(o->key_file, &o->key, err, sizeof(err)) < 0) {
		fprintf(stderr, "gmem-migrate: %s\n", err);
		exit(EXIT_USAGE);
	}
	if (key_require(&o->key, o->dest ? "--connect" : "--listen", o->addr,
			o->insecure, err, sizeof(err)) < 0) {
		fprintf(stderr, "gmem-migrate: %s\n", err);
		exit(EXIT_USAGE);
	}
	if (o->key.len) {
		o->params.key = o->key.bytes;
		o->params.key_len = o->key.len;
	}
}

/* --qmp's own options, and what it cannot do. */
static void check_qmp(struct migrate_opts *o, bool mode_given,
		      bool observe_given)
{
	if (!o->qmp) {
		if (o->qemu_uri || o->uffd_socket || o->memdev)
			opt_fail("--qemu-uri, --uffd-socket and --memdev go "
				 "with --qmp");
		return;
	}
	if (!o->qemu_uri)
		opt_fail("--qmp needs --qemu-uri (where the destination QEMU "
			 "receives its device state)");
	if (o->dest != !!o->uffd_socket)
		opt_fail(o->dest ? "dest --qmp needs --uffd-socket" :
			 "--uffd-socket is for dest");
	/* No dirty log sees the QEMU's writes to its memory: the modes that
	 * send pages while it runs cannot. */
	if (mode_given && o->params.mode != GMEM_MIGRATE_POSTCOPY &&
	    o->params.mode != GMEM_MIGRATE_STOP_AND_COPY)
		opt_fail("--qmp migrates post-copy or stop-and-copy, not "
			 "--mode %s", gmem_migrate_mode_name(o->params.mode));
	if (!mode_given)
		o->params.mode = GMEM_MIGRATE_POSTCOPY; /* auto's pre-copy cannot */
	if (o->verify || observe_given)
		opt_fail("--verify and --observe-ms need --control");
}

static uint32_t parse_mode(const char *arg)
{
	const char *names[8] = {};

	for (uint32_t m = 0; m < 7 && gmem_migrate_mode_name(m); m++)
		names[m] = gmem_migrate_mode_name(m);
	return opt_choice("--mode", arg, names);
}

_Static_assert(EXIT_USAGE == OPT_EXIT_USAGE, "one usage status");

/* Long options without a short one. */
enum {
	OPT_MAX_ROUNDS = 256, OPT_DOWNTIME, OPT_ABORT, OPT_BULK, OPT_THREADS,
	OPT_FAULT_AROUND, OPT_NUMA_NODE, OPT_PCI, OPT_NO_PREALLOC, OPT_RECOVER,
	OPT_OBSERVE, OPT_VERIFY, OPT_KEEP_SOURCE, OPT_JSON, OPT_INSECURE,
	OPT_QMP, OPT_QEMU_URI, OPT_UFFD_SOCKET, OPT_MEMDEV,
	OPT_PUSH_ORDER, OPT_HOT_EPOCH,
};

static void parse_opts(int argc, char **argv, struct migrate_opts *o)
{
	static const char shorts[] = ":C:l:c:m:t:w:k:qh";
	static const struct option opts[] = {
		{ "control", required_argument, NULL, 'C' },
		{ "qmp", required_argument, NULL, OPT_QMP },
		{ "qemu-uri", required_argument, NULL, OPT_QEMU_URI },
		{ "uffd-socket", required_argument, NULL, OPT_UFFD_SOCKET },
		{ "memdev", required_argument, NULL, OPT_MEMDEV },
		{ "listen", required_argument, NULL, 'l' },
		{ "connect", required_argument, NULL, 'c' },
		{ "mode", required_argument, NULL, 'm' },
		{ "max-rounds", required_argument, NULL, OPT_MAX_ROUNDS },
		{ "downtime-ms", required_argument, NULL, OPT_DOWNTIME },
		{ "abort-unconverged", no_argument, NULL, OPT_ABORT },
		{ "bulk", required_argument, NULL, OPT_BULK },
		{ "push-order", required_argument, NULL, OPT_PUSH_ORDER },
		{ "hot-epoch-ms", required_argument, NULL, OPT_HOT_EPOCH },
		{ "transport", required_argument, NULL, 't' },
		{ "threads", required_argument, NULL, OPT_THREADS },
		{ "fault-around", required_argument, NULL, OPT_FAULT_AROUND },
		{ "numa-node", required_argument, NULL, OPT_NUMA_NODE },
		{ "pci", required_argument, NULL, OPT_PCI },
		{ "no-prealloc", no_argument, NULL, OPT_NO_PREALLOC },
		{ "wait-ms", required_argument, NULL, 'w' },
		{ "recover-ms", required_argument, NULL, OPT_RECOVER },
		{ "observe-ms", required_argument, NULL, OPT_OBSERVE },
		{ "verify", no_argument, NULL, OPT_VERIFY },
		{ "keep-source", no_argument, NULL, OPT_KEEP_SOURCE },
		{ "json", required_argument, NULL, OPT_JSON },
		{ "key-file", required_argument, NULL, 'k' },
		{ "insecure", no_argument, NULL, OPT_INSECURE },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	struct gmem_migrate_params *p = &o->params;
	enum transport_choice transport = TRANSPORT_DEFAULT;
	const char *listen = NULL, *conn = NULL, *node = NULL, *pci = NULL;
	static const char *const push_orders[] = { "hot", "address", NULL };
	const char *side;
	bool mode_given = false, observe_given = false;
	int c;

	p->mode = GMEM_MIGRATE_AUTO;
	o->observe_ms = 3000;
	o->params.recover_ms = 30000;
	o->params.wait_ms = 30000;
	o->numa_node = -1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, shorts, opts, NULL)) != -1) {
		switch (c) {
		case 'C': o->control = optarg; break;
		case OPT_QMP: o->qmp = optarg; break;
		case OPT_QEMU_URI: o->qemu_uri = optarg; break;
		case OPT_UFFD_SOCKET: o->uffd_socket = optarg; break;
		case OPT_MEMDEV: o->memdev = optarg; break;
		case 'l': listen = optarg; break;
		case 'c': conn = optarg; break;
		case 'm':
			p->mode = parse_mode(optarg);
			mode_given = true;
			break;
		case OPT_MAX_ROUNDS:
			/* 0 would mean the library's default. */
			p->max_rounds = opt_int("--max-rounds", optarg, 1,
						INT32_MAX);
			break;
		case OPT_DOWNTIME:
			p->downtime_ms = opt_int("--downtime-ms", optarg, 1,
						 INT32_MAX);
			break;
		case OPT_ABORT: p->flags |= GMEM_MIGRATE_ABORT_UNCONVERGED; break;
		case OPT_BULK:
			p->nr_bulk = opt_int("--bulk", optarg, 1, GMEM_MAX_BULK);
			break;
		case OPT_PUSH_ORDER:
			if (opt_choice("--push-order", optarg, push_orders))
				p->flags |= GMEM_MIGRATE_PUSH_ADDRESS;
			break;
		case OPT_HOT_EPOCH:
			p->hot_epoch_ms = opt_int("--hot-epoch-ms", optarg, 1,
						  60000);
			break;
		case 't': transport = transport_opt_parse(optarg); break;
		case OPT_THREADS:
			p->nr_threads = opt_int("--threads", optarg, 1,
						GMEM_MAX_THREADS);
			break;
		case OPT_FAULT_AROUND:
			p->fault_around = opt_pow2("--fault-around", optarg, 1,
						   GMEM_MAX_FAULT_AROUND);
			break;
		case OPT_NUMA_NODE: node = optarg; break;
		case OPT_PCI: pci = optarg; break;
		case OPT_NO_PREALLOC: o->no_prealloc = true; break;
		case 'w': p->wait_ms = opt_ms("--wait-ms", optarg, 1); break;
		case OPT_RECOVER:
			p->recover_ms = opt_ms("--recover-ms", optarg, 0);
			break;
		case OPT_OBSERVE:
			o->observe_ms = opt_int("--observe-ms", optarg, 0,
						INT32_MAX);
			observe_given = true;
			break;
		case OPT_VERIFY: o->verify = true; break;
		case OPT_KEEP_SOURCE: o->keep_source = true; break;
		case OPT_JSON: o->json_path = optarg; break;
		case 'k': o->key_file = optarg; break;
		case OPT_INSECURE: o->insecure = true; break;
		case 'q': o->quiet = true; break;
		case 'h': usage(stdout); exit(EXIT_OK);
		default: opt_getopt_fail(c, argv, opts);
		}
	}
	if (optind == argc)
		opt_fail("say `source` or `dest`");
	side = argv[optind];
	if (strcmp(side, "source") && strcmp(side, "dest"))
		opt_fail("say `source` or `dest`, not '%s'", side);
	if (optind + 1 < argc)
		opt_fail("unexpected argument '%s'", argv[optind + 1]);
	o->dest = !strcmp(side, "dest");
	/* The report's "transport" says which was used. */
	if (transport_opt_rdma(transport))
		p->flags |= GMEM_MIGRATE_RDMA;
	o->addr = o->dest ? conn : listen;
	if (o->dest ? listen : conn)
		opt_fail("%s takes %s, not %s", side,
			 o->dest ? "--connect" : "--listen",
			 o->dest ? "--listen" : "--connect");
	if (o->dest && mode_given)
		opt_fail("--mode is for source: the destination follows the source's mode");
	if ((node || pci) && !o->dest)
		opt_fail("--numa-node and --pci are for dest");
	if (!!o->control == !!o->qmp || !o->addr)
		opt_fail("%s needs --control or --qmp, and %s", side,
			 o->dest ? "--connect" : "--listen");
	check_qmp(o, mode_given, observe_given);
	opt_hostport(o->dest ? "--connect" : "--listen", o->addr, !o->dest);
	if (node || pci)
		parse_node(node, pci, &o->numa_node);
	parse_key(o);
}

int main(int argc, char **argv)
{
	struct migrate_opts o = {};

	parse_opts(argc, argv, &o);
	/* Before the workload is touched: a name that does not resolve. */
	if (opt_resolve(o.dest ? "--connect" : "--listen", o.addr, !o.dest))
		return EXIT_NETWORK;
	return o.dest ? migrate_dest(&o) : migrate_source(&o);
}
