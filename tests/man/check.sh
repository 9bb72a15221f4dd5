#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Render a man page with every groff warning on; any diagnostic fails.
# groff exits 0 on warnings, hence the check of its stderr.
set -u
page=$1
[ -r "$page" ] || { echo "man page $page: not readable" >&2; exit 1; }
out=$(LC_ALL=C.UTF-8 groff -man -ww -z -t "$page" 2>&1) || { echo "$out"; exit 1; }
if [ -n "$out" ]; then
	echo "groff warnings for $page:"
	echo "$out"
	exit 1
fi
if command -v man >/dev/null 2>&1; then
	out=$(MANWIDTH=80 LC_ALL=C.UTF-8 man --warnings -l -E UTF-8 "$page" 2>&1 >/dev/null) ||
		{ echo "man -l $page failed: $out"; exit 1; }
	if [ -n "$out" ]; then
		echo "man warnings for $page:"
		echo "$out"
		exit 1
	fi
fi
echo "$page: renders without warnings"
