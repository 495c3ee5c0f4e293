#!/bin/sh
# Entry point of the pdfgen-pipeline image: a role name, or any command, run as is (the Helm chart's
# `dagster code-server start ...`, the `dagster api execute_run ...` of Kubernetes run pods, a shell...).
set -eu

app=/opt/dagster/app
workspace="${DAGSTER_WORKSPACE:-$app/workspace.yaml}"
role="${1:-code-server}"
if [ "$#" -gt 0 ]; then shift; fi

case "$role" in
  code-server)
    exec dagster code-server start -m pdfgen_pipeline.definitions -h 0.0.0.0 -p "${DAGSTER_GRPC_PORT:-4000}" "$@" ;;
  webserver)
    exec dagster-webserver -h 0.0.0.0 -p "${DAGSTER_WEBSERVER_PORT:-3000}" -w "$workspace" "$@" ;;
  daemon)
    exec dagster-daemon run -w "$workspace" "$@" ;;
  init-s3)
    exec python "$app/init_s3.py" --seed "$app/examples/referentiel" "$@" ;;
  *)
    exec "$role" "$@" ;;
esac
