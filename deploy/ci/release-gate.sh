#!/usr/bin/env sh
# Release gate: run the parity scenarios before a deploy and stop the pipeline on any gap.
#   0 parity held · 1 gaps found · 2 bad input · 3 no verdict (an environment errored) · 4 parityprobe failed
# A gate should treat 3 as a failure too: an unreachable Vault is not proof of parity.
set -eu
ENVIRONMENTS=${ENVIRONMENTS:-deploy/environments.yaml}
REPORT=${REPORT:-parityprobe-report.json}

parityprobe validate --environments "$ENVIRONMENTS" scenarios/
status=0
parityprobe run --environments "$ENVIRONMENTS" --format json --output "$REPORT" scenarios/ || status=$?
case "$status" in
  0) echo "parity held" ;;
  1) echo "parity gaps found: see $REPORT" ;;
  3) echo "no verdict: an environment could not be probed; see $REPORT" ;;
  *) echo "parityprobe could not run (exit $status)" ;;
esac
exit "$status"
