#!/bin/bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Installs the Debian 12 packages that building, testing, the demo, the bench
# and the VM tests need. Idempotent: each package is probed through a command
# or file it provides, and apt-get runs only when something is missing.
# Probing files rather than dpkg status keeps an alternative that provides the
# same thing (nginx-full instead of nginx-light) from being replaced.

set -euo pipefail

# One "package probe" pair per line. A probe is a command name, an absolute
# path (globs allowed) for headers, libraries and modules, or "dpkg" when only
# that exact package will do.
PACKAGES='
# build: compilers, BPF toolchain, libraries the agent links
make				make
gcc				gcc
clang				clang
llvm				llvm-strip
bpftool				bpftool
pkg-config			pkg-config
libbpf-dev			/usr/include/bpf/libbpf.h
libelf-dev			/usr/include/libelf.h
zlib1g-dev			/usr/include/zlib.h
libyaml-dev			/usr/include/yaml.h
libjansson-dev			/usr/include/jansson.h
libssl-dev			/usr/include/openssl/ssl.h
libcurl4-openssl-dev		/usr/include/*/curl/curl.h
libmicrohttpd-dev		/usr/include/microhttpd.h
# llhttp, the HTTP/1 parser, as C sources the build compiles in
node-llhttp			/usr/share/llhttp/llhttp.c
# tests: unit test framework; integ valgrind runs sluiced under memcheck
libcmocka-dev			/usr/include/cmocka.h
valgrind			valgrind
openssl				openssl
# make fuzz: the libFuzzer runtime clang links for -fsanitize=fuzzer
libclang-rt-14-dev		/usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-*.a
# tests, demo, bench: namespaces, cgroups, processes
iproute2			ip
kmod				modprobe
util-linux			nsenter
procps				pkill
# demo and bench: real peers and clients
nginx-light			nginx
libnginx-mod-stream		/usr/lib/nginx/modules/ngx_stream_module.so
postgresql			/usr/lib/postgresql/*/bin/initdb
postgresql-client		psql
curl				curl
wrk				wrk
jq				jq
# integ top: sluicectl top in a real terminal
tmux				tmux
# integ metrics: promtool checks /metrics, a real Prometheus scrapes it
prometheus			promtool
# bench: the multiplexed reference pair (HTTP/2 over pooled mTLS connections)
haproxy				haproxy
# integ jvm_client, demo: a real JVM client (dual-stack sockets by default)
openjdk-17-jdk-headless		javac
# identity tests: a real OpenID provider (oidc-provider from npm)
nodejs				node
npm				npm
# vmtest: a Debian kernel under qemu with a busybox initramfs
qemu-system-x86			qemu-system-x86_64
busybox-static			dpkg
cpio				cpio
'

# True when the probe is satisfied.
present()
{
	local pkg=$1 probe=$2 f

	if [[ $probe == dpkg ]]; then
		dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q ' installed$'
		return
	fi
	if [[ $probe != /* ]]; then
		command -v "$probe" >/dev/null 2>&1 ||
			PATH=$PATH:/usr/sbin:/sbin command -v "$probe" >/dev/null 2>&1
		return
	fi
	for f in $probe; do
		[[ -e $f ]] && return 0
	done
	return 1
}

missing=()
while read -r pkg probe; do
	[[ -z $pkg || $pkg == \#* ]] && continue
	present "$pkg" "$probe" || missing+=("$pkg")
done <<<"$PACKAGES"

if ((${#missing[@]} == 0)); then
	echo "deps: all packages present"
	exit 0
fi

echo "deps: missing: ${missing[*]}"
if ((EUID != 0)); then
	echo "deps: run as root to install them (sudo make deps)" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# Wait for another apt/dpkg run instead of failing on its lock.
apt_opts=(-o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)
apt-get "${apt_opts[@]}" update
echo "deps: installing: ${missing[*]}"
apt-get "${apt_opts[@]}" install -y --no-install-recommends "${missing[@]}"

still=()
while read -r pkg probe; do
	[[ -z $pkg || $pkg == \#* ]] && continue
	present "$pkg" "$probe" || still+=("$pkg ($probe)")
done <<<"$PACKAGES"
if ((${#still[@]} > 0)); then
	echo "deps: installed, but still missing: ${still[*]}" >&2
	exit 1
fi
echo "deps: done"
