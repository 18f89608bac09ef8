#!/usr/bin/env bash
# SageMaker starts the container as `<image> serve`. Starts multi-model-server on 127.0.0.1:8081
# (start_model_server.py: workers per machine unless SAGEMAKER_MODEL_SERVER_WORKERS is set, the
# model registered with MODEL_SERVER_BATCH_SIZE / MODEL_SERVER_MAX_BATCH_DELAY_MS) and nginx on
# :8080; exits when either stops, so SageMaker replaces the container.
set -euo pipefail

if [[ "${1:-serve}" != "serve" ]]; then
    exec "$@"
fi

case "${TOWER}" in
    vision | text) ;;
    *) echo "TOWER must be vision or text, not '${TOWER}'" >&2; exit 64 ;;
esac
if [[ ! -f /opt/ml/model/code/inference.py ]]; then
    export PYTHONPATH="/opt/hf_towers/code/${TOWER}${PYTHONPATH:+:${PYTHONPATH}}"
fi

python /opt/hf_towers/start_model_server.py &
model_server=$!
nginx &
proxy=$!

trap 'kill -TERM "${model_server}" "${proxy}" 2>/dev/null || true' TERM INT
status=0
wait -n "${model_server}" "${proxy}" || status=$?
kill -TERM "${model_server}" "${proxy}" 2>/dev/null || true
exit "${status}"
