/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hpc-nodectl's command line. Hand-written rather than getopt_long: the
 * parser is a pure function of argv (no optind, no argv permutation, no
 * messages printed by libc), so a table of cases can pin every usage error.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hpcnode/constants.h>
#include <hpcnode/types.h>

#include "ctl_format.h"

static const struct {
	const char *name;
	enum hpcn_ctl_cmd cmd;
} commands[] = {
	{ "status", HPCN_CTL_CMD_STATUS },
	{ "metrics", HPCN_CTL_CMD_METRICS },
	{ "end", HPCN_CTL_CMD_END },
	{ "release", HPCN_CTL_CMD_RELEASE },
	{ "reconcile", HPCN_CTL_CMD_RECONCILE },
	{ "force-unmount", HPCN_CTL_CMD_FORCE_UNMOUNT },
	{ "ping", HPCN_CTL_CMD_PING },
	{ "help", HPCN_CTL_CMD_HELP },
};

const char *hpcn_ctl_cmd_name(enum hpcn_ctl_cmd cmd)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (commands[i].cmd == cmd)
			return commands[i].name;
	if (cmd == HPCN_CTL_CMD_VERSION)
		return "version";
	return NULL;
}

static int usage_err(char *errbuf, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int usage_err(char *errbuf, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errbuf, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* Milliseconds, decimal, 1..HPCN_CTL_MAX_TIMEOUT_MS. */
static int parse_timeout(const char *s, int *out)
{
	char *end = NULL;
	long v;

	if (!s[0] || s[0] < '0' || s[0] > '9')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < 1 || v > HPCN_CTL_MAX_TIMEOUT_MS)
		return -1;
	*out = (int)v;
	return 0;
}

enum opt_id { O_HELP, O_VERSION, O_JSON, O_EMERGENCY, O_SOCKET, O_GROUP, O_TIMEOUT };

static const struct {
	const char *name;
	bool takes_value;
	enum opt_id id;
} options[] = {
	{ "help", false, O_HELP },
	{ "version", false, O_VERSION },
	{ "json", false, O_JSON },
	{ "emergency", false, O_EMERGENCY },
	{ "socket", true, O_SOCKET },
	{ "group", true, O_GROUP },
	{ "timeout", true, O_TIMEOUT },
};

/* Does argv[*i] ("--name" or "--name=VALUE") name option `name`? When the
 * option takes a value, *value is set from "=VALUE" or the next argument. */
enum opt_match { OPT_NO, OPT_YES, OPT_MISSING_VALUE, OPT_UNWANTED_VALUE };

static enum opt_match match_opt(int argc, char *const argv[], int *i, const char *name,
				bool takes_value, const char **value)
{
	const char *a = argv[*i] + 2;
	size_t n = strlen(name);

	if (strncmp(a, name, n) != 0 || (a[n] != '\0' && a[n] != '='))
		return OPT_NO;
	if (!takes_value)
		return a[n] == '=' ? OPT_UNWANTED_VALUE : OPT_YES;
	if (a[n] == '=') {
		*value = a + n + 1;
	} else {
		if (*i + 1 >= argc)
			return OPT_MISSING_VALUE;
		*value = argv[++*i];
	}
	return **value ? OPT_YES : OPT_MISSING_VALUE;
}

/* Keep the first usage error of the line: later ones are often its echoes. */
static void note_err(char *first, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void note_err(char *first, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (first[0])
		return;
	va_start(ap, fmt);
	vsnprintf(first, len, fmt, ap);
	va_end(ap);
}

/* What each command takes after its name. */
static int check_command(struct hpcn_ctl_args *args, int npos, char *const pos[],
			 char *errbuf, size_t errlen)
{
	const char *name = hpcn_ctl_cmd_name(args->cmd);
	struct hpcn_error err;
	int want = 0;

	switch (args->cmd) {
	case HPCN_CTL_CMD_METRICS:
		if (npos < 1)
			return usage_err(errbuf, errlen,
					 "'metrics' needs a cgroup path or an allocation id");
		want = 1;
		break;
	case HPCN_CTL_CMD_END:
		if (npos >= 1 && args->group)
			return usage_err(errbuf, errlen,
					 "'end' takes an allocation id or --group GROUP, not both");
		if (npos < 1 && !args->group)
			return usage_err(errbuf, errlen,
					 "'end' needs an allocation id or --group GROUP");
		want = args->group ? 0 : 1;
		break;
	case HPCN_CTL_CMD_RELEASE:
		if (npos < 1)
			return usage_err(errbuf, errlen, "'release' needs an allocation id");
		want = 1;
		break;
	case HPCN_CTL_CMD_FORCE_UNMOUNT:
		if (npos < 1)
			return usage_err(errbuf, errlen, "'force-unmount' needs an image path");
		want = 1;
		break;
	default:
		want = 0;
		break;
	}
	if (npos > want)
		return usage_err(errbuf, errlen, "unexpected argument '%s' for '%s'",
				 pos[want], name);
	if (want)
		args->target = pos[0];

	if (args->group && args->cmd != HPCN_CTL_CMD_END)
		return usage_err(errbuf, errlen, "option '--group' is only valid with 'end'");
	if (args->emergency && args->cmd != HPCN_CTL_CMD_FORCE_UNMOUNT)
		return usage_err(errbuf, errlen,
				 "option '--emergency' is only valid with 'force-unmount'");

	/* Ids become path components on the helper's side; saying so here
	 * beats a round trip and a less specific answer. */
	if ((args->cmd == HPCN_CTL_CMD_END || args->cmd == HPCN_CTL_CMD_RELEASE) &&
	    args->target && hpcn_alloc_id_validate(args->target, &err) < 0)
		return usage_err(errbuf, errlen, "%s", err.message);
	if (args->group && hpcn_alloc_id_validate(args->group, &err) < 0)
		return usage_err(errbuf, errlen, "--group: %s", err.message);

	if (args->cmd == HPCN_CTL_CMD_FORCE_UNMOUNT && !args->emergency)
		return usage_err(errbuf, errlen,
				 "refusing to force-unmount %s without --emergency: "
				 "running jobs using it lose the image", args->target);
	return 0;
}

int hpcn_ctl_parse_args(int argc, char *const argv[], const char *env_socket,
			struct hpcn_ctl_args *args, char *errbuf, size_t errlen)
{
	char **pos = NULL;
	bool help = false, version = false, only_pos = false;
	const char *cmdword = NULL;
	int npos = 0, rv = -1;
	char first_err[256] = "";

	memset(args, 0, sizeof(*args));
	args->socket_path = env_socket && env_socket[0] ? env_socket : HPCN_HANDOFF_SOCKET_PATH;
	args->timeout_ms = HPCN_CTL_DEFAULT_TIMEOUT_MS;
	if (errlen)
		errbuf[0] = '\0';

	/* Positionals are collected in a copy of their pointers (argv is not
	 * reordered); at most argc of them. */
	pos = calloc(argc > 0 ? (size_t)argc : 1, sizeof(*pos));
	if (!pos)
		return usage_err(errbuf, errlen, "out of memory");

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = NULL;
		enum opt_match m = OPT_NO;
		size_t k;

		if (only_pos || a[0] != '-' || a[1] == '\0') {
			if (!cmdword)
				cmdword = a;
			else
				pos[npos++] = argv[i];
			continue;
		}
		if (!strcmp(a, "--")) {
			only_pos = true;
			continue;
		}
		if (!strcmp(a, "-h")) {
			help = true;
			continue;
		}
		if (!strcmp(a, "-V")) {
			version = true;
			continue;
		}
		for (k = 0; a[1] == '-' && k < sizeof(options) / sizeof(options[0]); k++) {
			m = match_opt(argc, argv, &i, options[k].name, options[k].takes_value, &v);
			if (m != OPT_NO)
				break;
		}
		if (m == OPT_NO) {
			/* Name the option without its value. */
			const char *eq = strchr(a, '=');
			int n = eq ? (int)(eq - a) : (int)strlen(a);

			note_err(first_err, sizeof(first_err), "unknown option '%.*s'", n, a);
			continue;
		}
		if (m == OPT_MISSING_VALUE) {
			note_err(first_err, sizeof(first_err), "option '--%s' needs a value",
				 options[k].name);
			continue;
		}
		if (m == OPT_UNWANTED_VALUE) {
			note_err(first_err, sizeof(first_err), "option '--%s' takes no value",
				 options[k].name);
			continue;
		}
		switch (options[k].id) {
		case O_HELP:
			help = true;
			break;
		case O_VERSION:
			version = true;
			break;
		case O_JSON:
			args->json = true;
			break;
		case O_EMERGENCY:
			args->emergency = true;
			break;
		case O_SOCKET:
			args->socket_path = v;
			break;
		case O_GROUP:
			args->group = v;
			break;
		case O_TIMEOUT:
			if (parse_timeout(v, &args->timeout_ms) < 0)
				note_err(first_err, sizeof(first_err),
					 "invalid timeout '%s': expected milliseconds, 1 to %d",
					 v, HPCN_CTL_MAX_TIMEOUT_MS);
			break;
		}
	}

	if (help) {
		args->cmd = HPCN_CTL_CMD_HELP;
		rv = 0;
		goto out;
	}
	if (version) {
		args->cmd = HPCN_CTL_CMD_VERSION;
		rv = 0;
		goto out;
	}
	if (first_err[0]) {
		usage_err(errbuf, errlen, "%s", first_err);
		goto out;
	}
	if (!cmdword) {
		usage_err(errbuf, errlen, "no command given");
		goto out;
	}
	for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++)
		if (!strcmp(cmdword, commands[k].name))
			args->cmd = commands[k].cmd;
	if (args->cmd == HPCN_CTL_CMD_NONE) {
		usage_err(errbuf, errlen, "unknown command '%s'", cmdword);
		goto out;
	}
	rv = check_command(args, npos, pos, errbuf, errlen);
out:
	free(pos);
	return rv;
}

void hpcn_ctl_usage(FILE *out)
{
	fputs("Usage: " HPCN_CTL_NAME " [OPTIONS] COMMAND [ARGS]\n"
	      "\n"
	      "Administer hpc-node-helper, the node's provider of the hpc-node contract.\n"
	      "\n"
	      "Commands:\n"
	      "  status              readiness, cgroup root, allocations, mounts, zombies\n"
	      "  metrics PATH|ALLOC  memory, CPU, processes and pressure of a cgroup\n"
	      "                      (a path under the cgroup root, or an allocation id)\n"
	      "  end ALLOC           end an allocation: kill its scope, release its\n"
	      "                      namespaces and mounts (AllocationEnded)\n"
	      "  end --group GROUP   end every allocation of a group (e.g. a Slurm job)\n"
	      "  release ALLOC       release an allocation's namespaces and mounts;\n"
	      "                      the same message as 'end'\n"
	      "  reconcile           check state against the kernel now, print corrections\n"
	      "  force-unmount --emergency IMAGE\n"
	      "                      unmount an image now, whatever its refcount:\n"
	      "                      running jobs lose it\n"
	      "  ping                check that the helper answers, print its version\n"
	      "\n"
	      "Options:\n"
	      "  --socket PATH       the helper's socket (default $" HPCN_CTL_SOCKET_ENV ",\n"
	      "                      else " HPCN_HANDOFF_SOCKET_PATH ")\n"
	      "  --timeout MS        connect and reply timeout in milliseconds (default 5000)\n"
	      "  --json              print the helper's answer as JSON\n"
	      "  -h, --help          print this help\n"
	      "  -V, --version       print the version\n"
	      "\n"
	      "Exit status: 0 success, 1 the helper answered with an error, 2 usage error,\n"
	      "3 helper unreachable, 4 permission denied. See hpc-nodectl(8).\n", out);
}
