#!/usr/bin/env bash
# SageMaker starts the container as `<image> serve`. Starts multi-model-server (through the
# Hugging Face toolkit, with SAGEMAKER_MODEL_SERVER_WORKERS workers on :8081) and nginx on :8080;
# exits when either stops, so SageMaker replaces the container.
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

python -c "from sagemaker_huggingface_inference_toolkit import serving; serving.main()" &
model_server=$!
nginx &
proxy=$!

trap 'kill -TERM "${model_server}" "${proxy}" 2>/dev/null || true' TERM INT
status=0
wait -n "${model_server}" "${proxy}" || status=$?
kill -TERM "${model_server}" "${proxy}" 2>/dev/null || true
exit "${status}"
