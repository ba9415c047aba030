#!/usr/bin/env bash
# Entry point of the reproduction container, also runnable outside it (CI runs `docker/reproduce.sh --quick`):
#   reproduce.sh [fig1|fig2|fig3|fig4|all] [--quick] [more pinntk reproduce flags]
# Results go to $RESULTS (default /results in the container, ./results outside), plots when matplotlib is there.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
PINNTK="${PINNTK:-$here/../build/pinntk}"
RESULTS="${RESULTS:-$( [ -d /results ] && [ -w /results ] && echo /results || echo results )}"
target=all
if [ $# -gt 0 ] && [[ "$1" != --* ]]; then target="$1"; shift; fi
if [ ! -x "$PINNTK" ]; then echo "reproduce.sh: $PINNTK not found; build first (scripts/build_and_test.sh)" >&2; exit 2; fi
exec "$PINNTK" reproduce "$target" --out "$RESULTS" "$@"
