// SPDX-License-Identifier: MIT
/*
 * gmem-migrate.c - the operator's command: live-migrates a workload's region
 * between two hosts. One instance runs on each side; options, --help and
 * the exit codes live here, the work in migrate-run.c.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate-cli.h"
#include "transport-opt.h"

static void usage(FILE *f)
{
	fprintf(f,
"usage: gmem-migrate source --control PATH --listen HOST:PORT [options]\n"
"       gmem-migrate dest   --control PATH --connect HOST:PORT [options]\n"
"\n"
"Live-migrates the GPU memory region of a workload (its monitor socket at\n"
"--control, e.g. gmem-replay's) from the source host to the destination\n"
"host. Run `source` on the source host and `dest` on the destination host,\n"
"whose workload waits paused (gmem-replay --incoming).\n"
"\n"
"  --control PATH       the workload's control socket (required)\n"
"  --listen HOST:PORT   source: where the destination connects\n"
"  --connect HOST:PORT  dest: the source's --listen address\n"
"  --mode MODE          source: postcopy (default), precopy, hybrid,\n"
"                       stop-and-copy\n"
"  --max-rounds N       pre-copy rounds after the full pass (precopy: 30,\n"
"                       hybrid: 2)\n"
"  --downtime-ms MS     precopy: target freeze (300)\n"
"  --abort-unconverged  precopy: cancel instead of forcing the switchover\n"
"  --bulk N             bulk connections, 1..8 (2)\n"
"  --transport rdma|tcp post-copy pages by RDMA READ (source: HOST is an\n"
"                       RDMA device's address) or TCP; both sides must\n"
"                       agree (default: rdma when this host has an RDMA\n"
"                       device, else tcp; the report's \"transport\")\n"
"  --threads N          dest: fault handler threads (2)\n"
"  --fault-around N     dest: pages per urgent request, power of 2 (16)\n"
"  --numa-node N        dest: region pages, staging buffers and fault\n"
"                       handlers on NUMA node N (default: no placement)\n"
"  --pci ADDR           dest: on the node of PCI device ADDR (the GPU,\n"
"                       DDDD:BB:DD.F); a device without a node is node 0\n"
"                       on a one-node machine\n"
"  --no-prealloc        dest: do not allocate the region's page cache\n"
"                       before connecting (default: allocate it, so that\n"
"                       post-copy copies pages into memory already there)\n"
"  --wait-ms MS         give up on a silent peer (30000; -1 never)\n"
"  --recover-ms MS      post-copy recovery: when the link breaks after the\n"
"                       switchover, pause and let the destination reconnect\n"
"                       for up to MS ms, both sides (30000; 0 off: fail at\n"
"                       once; -1 forever); the source keeps every page\n"
"  --key-file PATH      pre-shared key (16..256 bytes, file mode 600; else\n"
"                       the GMEM_KEY variable): both sides must prove it\n"
"                       (HMAC-SHA256 challenge) before any page moves, and\n"
"                       every frame is encrypted (AES-256-GCM or\n"
"                       XChaCha20-Poly1305); make one with\n"
"                       `head -c 32 /dev/urandom > KEY; chmod 600 KEY`\n"
"  --insecure           allow a non-loopback --listen/--connect without a\n"
"                       key: pages in the clear, any peer served\n"
"  --observe-ms MS      dest: watch the workload after completion (3000)\n"
"  --verify             dest: the workload checks every page at the end\n"
"  --keep-source        source: leave the source workload running/paused\n"
"                       (default: tell it to quit once the pages are safe)\n"
"  --json FILE          also write the final report to FILE\n"
"  --quiet              no progress line\n"
"  -h, --help           this text\n"
"\n"
"Prints a progress line on stderr and one JSON report on stdout.\n"
"Exit status: 0 migrated and verified; 1 internal error; 2 bad options;\n"
"3 workload control failed; 4 network or peer failure; 5 pages differ\n"
"after migration; 6 pre-copy did not converge (--abort-unconverged);\n"
"7 the peer failed authentication (another key, or none); 8 the link broke\n"
"during post-copy and the peer did not come back within --recover-ms.\n");
}

static int parse_mode(const char *s, uint32_t *mode)
{
	for (uint32_t m = 0; gmem_migrate_mode_name(m); m++)
		if (!strcmp(s, gmem_migrate_mode_name(m))) {
			*mode = m;
			return 0;
		}
	return -1;
}

/* --numa-node N, or the node of --pci ADDR from sysfs. */
static int parse_node(const char *node, const char *pci, int *out)
{
	char *end;
	long n;

	if (node && pci) {
		fprintf(stderr, "gmem-migrate: --numa-node or --pci, not both\n");
		return -1;
	}
	if (node) {
		n = strtol(node, &end, 10);
		if (*end || end == node || n < 0 || n > 4095) {
			fprintf(stderr, "gmem-migrate: --numa-node %s: expected a node number\n",
				node);
			return -1;
		}
		*out = n;
		return 0;
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
		return -1;
	}
	return 0;
}

static int parse_key(struct migrate_opts *o)
{
	char err[256];

	if (key_load(o->key_file, &o->key, err, sizeof(err)) < 0) {
		fprintf(stderr, "gmem-migrate: %s\n", err);
		return -1;
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
	return 0;
}

static int parse_opts(int argc, char **argv, struct migrate_opts *o)
{
	static const struct option opts[] = {
		{ "control", required_argument, NULL, 'c' },
		{ "listen", required_argument, NULL, 'l' },
		{ "connect", required_argument, NULL, 'C' },
		{ "mode", required_argument, NULL, 'm' },
		{ "max-rounds", required_argument, NULL, 'r' },
		{ "downtime-ms", required_argument, NULL, 'd' },
		{ "abort-unconverged", no_argument, NULL, 'A' },
		{ "bulk", required_argument, NULL, 'b' },
		{ "transport", required_argument, NULL, 'T' },
		{ "threads", required_argument, NULL, 't' },
		{ "fault-around", required_argument, NULL, 'f' },
		{ "numa-node", required_argument, NULL, 'N' },
		{ "pci", required_argument, NULL, 'P' },
		{ "no-prealloc", no_argument, NULL, 'n' },
		{ "wait-ms", required_argument, NULL, 'w' },
		{ "recover-ms", required_argument, NULL, 'R' },
		{ "observe-ms", required_argument, NULL, 'o' },
		{ "verify", no_argument, NULL, 'V' },
		{ "keep-source", no_argument, NULL, 'k' },
		{ "json", required_argument, NULL, 'j' },
		{ "key-file", required_argument, NULL, 'K' },
		{ "insecure", no_argument, NULL, 'I' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	struct gmem_migrate_params *p = &o->params;
	enum transport_choice transport = TRANSPORT_DEFAULT;
	const char *listen = NULL, *conn = NULL, *node = NULL, *pci = NULL;
	int c;

	o->observe_ms = 3000;
	o->params.recover_ms = 30000;
	o->numa_node = -1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': o->control = optarg; break;
		case 'l': listen = optarg; break;
		case 'C': conn = optarg; break;
		case 'm':
			if (parse_mode(optarg, &p->mode) < 0) {
				fprintf(stderr, "gmem-migrate: unknown mode '%s'\n",
					optarg);
				return -1;
			}
			break;
		case 'r': p->max_rounds = atoi(optarg); break;
		case 'd': p->downtime_ms = atoi(optarg); break;
		case 'A': p->flags |= GMEM_MIGRATE_ABORT_UNCONVERGED; break;
		case 'b': p->nr_bulk = atoi(optarg); break;
		case 'T':
			if (transport_opt_parse("gmem-migrate", optarg,
						&transport) < 0)
				return -1;
			break;
		case 't': p->nr_threads = atoi(optarg); break;
		case 'f': p->fault_around = atoi(optarg); break;
		case 'N': node = optarg; break;
		case 'P': pci = optarg; break;
		case 'n': o->no_prealloc = true; break;
		case 'w': p->wait_ms = atoi(optarg); break;
		case 'R': p->recover_ms = atoi(optarg); break;
		case 'o': o->observe_ms = atoi(optarg); break;
		case 'V': o->verify = true; break;
		case 'k': o->keep_source = true; break;
		case 'j': o->json_path = optarg; break;
		case 'K': o->key_file = optarg; break;
		case 'I': o->insecure = true; break;
		case 'q': o->quiet = true; break;
		case 'h': usage(stdout); exit(EXIT_OK);
		default: return -1;
		}
	}
	if (optind != argc - 1 ||
	    (strcmp(argv[optind], "source") && strcmp(argv[optind], "dest"))) {
		fprintf(stderr, "gmem-migrate: say `source` or `dest`\n");
		return -1;
	}
	o->dest = !strcmp(argv[optind], "dest");
	/* The report's "transport" says which was used. */
	if (transport_opt_rdma(transport))
		p->flags |= GMEM_MIGRATE_RDMA;
	o->addr = o->dest ? conn : listen;
	if (o->dest ? listen : conn) {
		fprintf(stderr, "gmem-migrate: %s takes %s, not %s\n",
			argv[optind], o->dest ? "--connect" : "--listen",
			o->dest ? "--listen" : "--connect");
		return -1;
	}
	if ((node || pci) && !o->dest) {
		fprintf(stderr, "gmem-migrate: --numa-node and --pci are for dest\n");
		return -1;
	}
	if ((node || pci) && parse_node(node, pci, &o->numa_node) < 0)
		return -1;
	if (!o->control || !o->addr) {
		fprintf(stderr, "gmem-migrate: %s needs --control and %s\n",
			argv[optind], o->dest ? "--connect" : "--listen");
		return -1;
	}
	return parse_key(o);
}

int main(int argc, char **argv)
{
	struct migrate_opts o = {};

	if (parse_opts(argc, argv, &o) < 0) {
		usage(stderr);
		return EXIT_USAGE;
	}
	return o.dest ? migrate_dest(&o) : migrate_source(&o);
}
