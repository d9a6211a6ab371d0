#!/usr/bin/env bash
# make demo: runs the whole stack in one process (vireo up: embedded NATS
# JetStream, ingest, frames, infer, retrain) with the bundled models,
# registers two real videos as sources through the HTTP API, and prints the
# results as they arrive until both videos have ended.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-bin/vireo}
DATA_DIR=${VIREO_DATA_DIR:-$(mktemp -d -t vireo-demo-XXXXXX)}
ADDR=${VIREO_ADDR:-127.0.0.1:8080}
NATS_PORT=${VIREO_NATS_PORT:-4222}
VIDEOS=/usr/share/doc/opencv-doc/examples/data
LOG="$DATA_DIR/vireo-up.log"

"$BIN" up --data-dir "$DATA_DIR" --addr "$ADDR" --nats-port "$NATS_PORT" --models models >"$LOG" 2>&1 &
UP=$!
cleanup() {
  kill -INT "$UP" 2>/dev/null || true
  wait "$UP" 2>/dev/null || true
  echo "demo: stopped; logs in $LOG"
}
trap cleanup EXIT

echo "demo: starting vireo up (data in $DATA_DIR, log $LOG)"
for _ in $(seq 1 120); do
  if curl -fsS "http://$ADDR/readyz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$UP" 2>/dev/null; then echo "demo: vireo up exited:"; tail -n 30 "$LOG"; exit 1; fi
  sleep 0.5
done
curl -fsS "http://$ADDR/readyz" >/dev/null || { echo "demo: vireo up not ready after 60 s"; tail -n 30 "$LOG"; exit 1; }

echo "demo: models in the store:"
curl -fsS "http://$ADDR/v1/models"; echo

# Start watching before the sources so no result is missed.
"$BIN" watch --nats "nats://127.0.0.1:$NATS_PORT" --until-end vtest,megamind &
WATCH=$!
sleep 0.5
curl -fsS -X POST "http://$ADDR/v1/sources" -H 'Content-Type: application/json' \
  -d "{\"id\":\"vtest\",\"url\":\"file://$VIDEOS/vtest.avi\",\"model\":\"vtest-people\",\"every_n\":5,\"schema_version\":1}"; echo
curl -fsS -X POST "http://$ADDR/v1/sources" -H 'Content-Type: application/json' \
  -d "{\"id\":\"megamind\",\"url\":\"file://$VIDEOS/Megamind.avi\",\"model\":\"megamind-face\",\"every_n\":2,\"schema_version\":1}"; echo
wait "$WATCH"
echo "demo: a single image through the HTTP API:"
curl -fsS -X POST "http://$ADDR/v1/models/megamind-face/predict" --data-binary "@$VIDEOS/messi5.jpg" | head -c 600; echo
