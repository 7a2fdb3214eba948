#!/usr/bin/env bash
# `make serve`: the Prefect server (UI), one worker and the intake service on this machine; Ctrl-C stops all.
#   Prefect UI        http://127.0.0.1:4200
#   intake service    http://127.0.0.1:8000/docs
# Settings: TRUCKROLL_DATABASE_URL (default sqlite:///truckroll.db here), TRUCKROLL_WEBHOOK_SECRET (unset:
# development mode with the default secret, and a warning),
# TRUCKROLL_PORT (8000), PREFECT_PORT (4200), TRUCKROLL_HOST / PREFECT_HOST (127.0.0.1).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="$PWD/.venv/bin"
PREFECT_HOST=${PREFECT_HOST:-127.0.0.1}
PREFECT_PORT=${PREFECT_PORT:-4200}
export PREFECT_SERVER_ANALYTICS_ENABLED=false
export PREFECT_HOME=${PREFECT_HOME:-$PWD/.prefect}
export PREFECT_API_URL=${PREFECT_API_URL:-http://$PREFECT_HOST:$PREFECT_PORT/api}
export TRUCKROLL_DATABASE_URL=${TRUCKROLL_DATABASE_URL:-sqlite:///$PWD/truckroll.db}
# A development convenience: without a webhook secret of your own the service would refuse to start.
if [ -z "${TRUCKROLL_WEBHOOK_SECRET:-}" ] && [ -z "${TRUCKROLL_WEBHOOK_SECRETS:-}" ]; then
  export TRUCKROLL_DEVELOPMENT=${TRUCKROLL_DEVELOPMENT:-true}
  echo "WARNING: development set-up: the webhook accepts the default secret 'change-me'." \
       "Set TRUCKROLL_WEBHOOK_SECRET for anything but a try-out." >&2
fi
mkdir -p "$PREFECT_HOME/logs"

PIDS=()
stop_all() {
  trap - EXIT INT TERM
  echo "stopping: ${PIDS[*]:-nothing}"
  # SIGINT is what Prefect's server and worker shut down cleanly on; whatever is left after 15 s is killed.
  for pid in "${PIDS[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
  for _ in $(seq 1 15); do
    alive=0
    for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 1
  done
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop_all EXIT INT TERM

echo "Prefect server on $PREFECT_API_URL (log: $PREFECT_HOME/logs/server.log)"
"$BIN/prefect" server start --host "$PREFECT_HOST" --port "$PREFECT_PORT" >"$PREFECT_HOME/logs/server.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 120); do
  "$BIN/python" -c "import httpx,sys; sys.exit(httpx.get('$PREFECT_API_URL/health', timeout=2).status_code != 200)" \
    2>/dev/null && break
  sleep 1
done

"$BIN/truckroll" db upgrade
"$BIN/prefect" work-pool create truckroll-pool --type process >/dev/null 2>&1 || true
# `prefect deploy --all` with a work-around for a Prefect 3.8.8 client bug (truckroll/deploy.py).
"$BIN/python" -m truckroll.deploy --all

echo "worker on pool truckroll-pool (log: $PREFECT_HOME/logs/worker.log)"
"$BIN/prefect" worker start --pool truckroll-pool --name "worker-$(hostname)-1" \
  >"$PREFECT_HOME/logs/worker.log" 2>&1 &
PIDS+=($!)

echo "intake service on http://${TRUCKROLL_HOST:-127.0.0.1}:${TRUCKROLL_PORT:-8000} (docs at /docs)"
echo "Prefect UI at http://$PREFECT_HOST:$PREFECT_PORT"
"$BIN/truckroll" serve --host "${TRUCKROLL_HOST:-127.0.0.1}" --port "${TRUCKROLL_PORT:-8000}" &
PIDS+=($!)
wait -n
