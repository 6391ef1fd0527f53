#!/bin/bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Installs the test collector's npm dependencies
# (@opentelemetry/otlp-transformer, pinned by package-lock.json) into
# tests/otlp/node_modules, as tests/oidc/setup.sh does for the IdP.
exec "$(dirname "$0")/../oidc/setup.sh" "$(cd "$(dirname "$0")" && pwd)"
