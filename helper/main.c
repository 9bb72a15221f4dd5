/* SPDX-License-Identifier: Apache-2.0 */
/* hpc-node-helper: options, configuration, then the daemon's loop. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server.h"
#include "log.h"

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: hpc-node-helper [OPTIONS]\n"
		"The node's provider of the hpc-node contract %s: workload.slice scopes,\n"
		"namespaces handed off over %s, refcounted uenv mounts.\n\n"
		"  -c, --config FILE   configuration file (default %s)\n"
		"  -f, --foreground    log to stderr (the default outside systemd)\n"
		"      --print-config  print the effective configuration and exit\n"
		"  -V, --version       print the version and exit\n"
		"  -h, --help          this text\n\n"
		"See hpc-node-helper(8) and helper.conf(5).\n",
		HPCN_CONTRACT_VERSION, HPCN_HANDOFF_SOCKET_PATH, HPCN_HELPER_CONFIG_PATH);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "print-config", no_argument, NULL, 'P' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	const char *config = NULL;
	bool foreground = false, print = false;
	static struct hpcn_helper helper;
	struct hpcn_config cfg;
	struct hpcn_error err;
	int c, rv;

	while ((c = getopt_long(argc, argv, "c:fVh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case 'f':
			foreground = true;
			break;
		case 'P':
			print = true;
			break;
		case 'V':
			printf("hpc-node-helper %s (hpc-node contract %s)\n", HPCN_VERSION_STRING,
			       HPCN_CONTRACT_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "hpc-node-helper: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (hpcn_config_load(&cfg, config, config != NULL, &err) < 0) {
		fprintf(stderr, "hpc-node-helper: %s\n", err.message);
		return 1;
	}
	if (print) {
		rv = hpcn_config_dump(&cfg, stdout) < 0;
		hpcn_config_free(&cfg);
		return rv;
	}
	hpcn_log_init(foreground ? HPCN_LOG_STDERR : cfg.log_target, cfg.log_level, NULL);
	if (hpcn_helper_init(&helper, &cfg, &err) < 0) {
		hpcn_config_free(&cfg);
		hpcn_log_error("%s", err.message);
		hpcn_helper_free(&helper);
		return 1;
	}
	hpcn_config_free(&cfg);
	hpcn_log_notice("hpc-node-helper %s ready on %s", HPCN_VERSION_STRING,
			helper.cfg.socket_path);
	rv = hpcn_helper_run(&helper);
	hpcn_helper_free(&helper);
	return rv < 0 ? 1 : 0;
}
