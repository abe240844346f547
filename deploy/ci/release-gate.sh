#!/usr/bin/env sh
# Release gate for any CI system: stop the pipeline unless the environments behave alike.
#
#   MODE=compare (default): compare what the environments' daemons stored in the last $SINCE, from the
#     shared store in PARITYPROBE_STORE_URL (kept in the environment: a --store argument would show the
#     password in the process list). No environment's credentials needed here.
#   MODE=run: run the scenarios now in every environment of $ENVIRONMENTS from this machine (it needs
#     every environment's network access and credentials).
#
#   0 parity held · 1 gaps found · 2 bad input · 3 no verdict (only inconclusive results, or nothing
#   stored in the window) · 4 parityprobe failed
# A gate treats 3 as a failure too: an unreachable Vault is not proof of parity.
set -eu
MODE=${MODE:-compare}
SINCE=${SINCE:-24h}
ENVIRONMENTS=${ENVIRONMENTS:-deploy/environments.yaml}
SCENARIOS=${SCENARIOS:-scenarios/}
REPORT=${REPORT:-parityprobe-report.json}

status=0
case "$MODE" in
  compare)
    parityprobe compare --since "$SINCE" --format json -o "$REPORT" || status=$?
    ;;
  run)
    parityprobe validate --environments "$ENVIRONMENTS" "$SCENARIOS"
    parityprobe run --environments "$ENVIRONMENTS" --format json --output "$REPORT" "$SCENARIOS" || status=$?
    ;;
  *)
    echo "MODE must be compare or run, not $MODE" >&2
    exit 2
    ;;
esac
case "$status" in
  0) echo "parity held" ;;
  1) echo "parity gaps found: see $REPORT" ;;
  2) echo "bad input: see the message above" ;;
  3) echo "no verdict: an environment could not be probed, or nothing was stored; see $REPORT" ;;
  *) echo "parityprobe could not run (exit $status)" ;;
esac
exit "$status"
