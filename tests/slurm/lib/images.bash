# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
#
# Squashfs uenv images for the Slurm tests, in the CSCS layout: meta/env.json
# at the root (version 1 views), programs under bin/.
#
#   make_uenv_image OUT [NAME [MOUNT]]
#       OUT    the image file to write (mode 0644, its directory must let the
#              test user in: images are opened with the job user's rights)
#       NAME   the image's "name" (default: OUT's basename without .sqfs)
#       MOUNT  the image's default mount point, used in its paths
#              (default /user-environment)
#
# Content:
#   bin/hello     prints "hpcn-hello image=NAME args=ARGS" (uenv_hello_marker)
#   bin/showenv   with no argument: the sorted environment; else VAR=value per
#                 named variable, VAR=<unset> when unset
#   meta/env.json views:
#     default  prepend PATH with MOUNT/bin, set HPCN_DEMO=1
#     tools    append MOUNT/tools/bin to PATH, set HPCN_TOOLS=NAME, unset
#              HPCN_DEMO (null scalar)
#   tools/bin/hpcn-tool  prints "hpcn-tool image=NAME"

# The line bin/hello of image NAME prints for ARGS.
uenv_hello_marker() { # name args...
	local name=$1
	shift
	printf 'hpcn-hello image=%s args=%s\n' "$name" "$*"
}

make_uenv_image() {
	local out=$1 name=${2:-} mount=${3:-/user-environment} src rc=0
	[[ -n $out ]] || { echo "make_uenv_image: no output file" >&2; return 1; }
	[[ -n $name ]] || { name=$(basename "$out"); name=${name%.sqfs}; name=${name%.squashfs}; }
	case $mount in
	/*) ;;
	*) echo "make_uenv_image: mount point '$mount' is not absolute" >&2; return 1 ;;
	esac
	src=$(mktemp -d "${TMPDIR:-/tmp}/hpcn-uenv-src.XXXXXX") || return 1
	mkdir -p "$src/bin" "$src/meta" "$src/tools/bin"

	cat >"$src/bin/hello" <<EOF
#!/bin/sh
echo "hpcn-hello image=$name args=\$*"
EOF
	cat >"$src/bin/showenv" <<'EOF'
#!/bin/sh
if [ $# -eq 0 ]; then
	env | LC_ALL=C sort
	exit 0
fi
for v in "$@"; do
	if val=$(printenv "$v"); then
		printf '%s=%s\n' "$v" "$val"
	else
		printf '%s=<unset>\n' "$v"
	fi
done
EOF
	cat >"$src/tools/bin/hpcn-tool" <<EOF
#!/bin/sh
echo "hpcn-tool image=$name"
EOF
	chmod 0755 "$src/bin/hello" "$src/bin/showenv" "$src/tools/bin/hpcn-tool"

	cat >"$src/meta/env.json" <<EOF
{
  "name": "$name",
  "description": "hpc-node test image $name",
  "mount": "$mount",
  "views": {
    "default": {
      "description": "the programs of $name",
      "root": "$mount",
      "env": {
        "version": 1,
        "type": "augment",
        "values": {
          "list": {
            "PATH": [ { "op": "prepend", "value": [ "$mount/bin" ] } ]
          },
          "scalar": { "HPCN_DEMO": "1" }
        }
      }
    },
    "tools": {
      "description": "extra tools of $name",
      "root": "$mount/tools",
      "env": {
        "version": 1,
        "type": "augment",
        "values": {
          "list": {
            "PATH": [ { "op": "append", "value": [ "$mount/tools/bin" ] } ]
          },
          "scalar": { "HPCN_TOOLS": "$name", "HPCN_DEMO": null }
        }
      }
    }
  }
}
EOF
	chmod -R a+rX "$src"
	mkdir -p "$(dirname "$out")"
	rm -f "$out"
	mksquashfs "$src" "$out" -noappend -all-root -no-progress -quiet >/dev/null || rc=1
	rm -rf "$src"
	((rc == 0)) || { echo "make_uenv_image: mksquashfs $out failed" >&2; return 1; }
	chmod 0644 "$out"
}
