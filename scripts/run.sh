#!/usr/bin/env bash
# Start the whole product: migrate, seed the demo, then the web server and one worker per queue.
# Ctrl-C stops everything started here.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}

mkdir -p var
$PY manage.py migrate --noinput
$PY manage.py collectstatic --noinput -v0
$PY manage.py seed_demo
# Runs whose worker died while this machine was down continue from their last checkpoint.
$PY manage.py resume_interrupted

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo "Stopping..."
  kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

# One worker per queue, so an import never waits behind a training run.
$PY manage.py db_worker --queue-name default --no-reload --worker-id "default-$(hostname)-$$" & pids+=($!)
$PY manage.py db_worker --queue-name gpu --no-reload --worker-id "gpu-$(hostname)-$$" & pids+=($!)
.venv/bin/gunicorn config.wsgi --bind "$HOST:$PORT" --workers "${WEB_WORKERS:-2}" --threads 4 \
  --timeout 120 --access-logfile - & pids+=($!)

sleep 2
cat <<MSG

  The workbench is running at http://$HOST:$PORT/
  Log in as admin / ${DEMO_ADMIN_PASSWORD:-admin} (administrator) or rater / ${DEMO_RATER_PASSWORD:-rater} (rater).
  Press Ctrl-C to stop the web server and the workers.

MSG
# Stop everything as soon as any one process dies.
wait -n
