#!/bin/bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Installs the test IdP's npm dependencies (oidc-provider, pinned by
# package-lock.json) into tests/oidc/node_modules with `npm ci`; with a
# directory argument, that directory's (tests/otlp/setup.sh passes its own).
# Idempotent: a stamp holding the lock file's hash skips the install when
# nothing changed, so running it before every test costs a few milliseconds.

set -euo pipefail

cd "${1:-$(dirname "$0")}"

for cmd in node npm; do
	if ! command -v "$cmd" >/dev/null; then
		echo "$0: $cmd not found; install nodejs and npm (make deps)" >&2
		exit 1
	fi
done

stamp=node_modules/.sluice-lock-sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
	exit 0
fi

npm ci --no-audit --no-fund --loglevel=error
echo "$want" >"$stamp"
