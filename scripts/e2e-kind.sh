#!/usr/bin/env bash
# Real-cluster end-to-end test on kind (or any cluster: see docs/e2e.md).
#
#   bash scripts/e2e-kind.sh            # create cluster "headwater-e2e", build, load, install, test
#   KIND_CLUSTER=dev bash scripts/e2e-kind.sh   # use/create another kind cluster
#   SKIP_KIND=1 bash scripts/e2e-kind.sh        # current kubectl context, images already pullable
#
# Needs: docker, kind (unless SKIP_KIND=1), kubectl, and the dev venv (.venv). Helm comes
# from scripts/install-helm.sh (a pinned binary under .tools/bin). Nothing is deleted at
# the end: the script prints the clean-up commands.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

cluster="${KIND_CLUSTER:-headwater-e2e}"
release="${HEADWATER_RELEASE:-headwater}"
operator_ns="${HEADWATER_E2E_OPERATOR_NAMESPACE:-headwater-system}"
test_ns="${HEADWATER_E2E_NAMESPACE:-headwater-e2e}"
tag="${HEADWATER_E2E_TAG:-e2e}"
operator_image="headwater/operator:$tag"
runtime_image="headwater/runtime:$tag"
examples_image="headwater/examples:$tag"
dbt_image="headwater/examples-dbt:$tag"

need() { command -v "$1" >/dev/null || { echo "e2e-kind: '$1' is required ($2)" >&2; exit 2; }; }
need docker "https://docs.docker.com/engine/install/"
need kubectl "https://kubernetes.io/docs/tasks/tools/"
[ "${SKIP_KIND:-0}" = 1 ] || need kind "https://kind.sigs.k8s.io/docs/user/quick-start/"
[ -x .venv/bin/python ] || { echo "e2e-kind: run 'bash scripts/bootstrap.sh' first" >&2; exit 2; }
helm="$(bash scripts/install-helm.sh | tail -n 1)"

echo "== images"
# Each build's context holds exactly what its Dockerfile copies (checked by
# tests/unit/chart/test_chart_build_contexts.py): the repository root, filtered by
# .dockerignore to sdk/ and operator/, for the operator and runtime images; examples/,
# filtered by examples/.dockerignore to flows/, for the examples image (the runtime image
# plus the example flows, so their entrypoints resolve; never part of the operator image);
# the root again, filtered to dbt/ and examples/dbt/, for the dbt example's image.
docker build -t "$operator_image" -f Dockerfile .
docker build -t "$runtime_image" -f images/runtime/Dockerfile .
docker build -t "$examples_image" --build-arg RUNTIME_IMAGE="$runtime_image" \
    -f examples/Dockerfile examples
# The jaffle shop (examples/dbt): the runtime image plus headwater-dbt[duckdb] and the
# example, from the repository root filtered by examples/dbt/Dockerfile.dockerignore.
docker build -t "$dbt_image" --build-arg RUNTIME_IMAGE="$runtime_image" \
    -f examples/dbt/Dockerfile .

if [ "${SKIP_KIND:-0}" != 1 ]; then
    echo "== kind cluster $cluster"
    kind get clusters | grep -qx "$cluster" || kind create cluster --name "$cluster" --wait 120s
    kubectl config use-context "kind-$cluster"
    for image in "$operator_image" "$examples_image" "$dbt_image"; do
        kind load docker-image "$image" --name "$cluster"
    done
fi

echo "== helm install $release (namespace $operator_ns)"
"$helm" upgrade --install "$release" charts/headwater --namespace "$operator_ns" \
    --create-namespace --wait --timeout 5m \
    --set image.repository=headwater/operator --set image.tag="$tag" \
    --set image.pullPolicy=IfNotPresent
kubectl -n "$operator_ns" rollout status "deployment/$release" --timeout=180s 2>/dev/null \
    || kubectl -n "$operator_ns" get pods

echo "== e2e tests (namespace $test_ns)"
status=0
HEADWATER_E2E=1 HEADWATER_E2E_NAMESPACE="$test_ns" \
    HEADWATER_E2E_OPERATOR_NAMESPACE="$operator_ns" HEADWATER_E2E_FLOW_IMAGE="$examples_image" \
    HEADWATER_E2E_DBT_IMAGE="$dbt_image" \
    .venv/bin/python -m pytest tests/e2e -v -p no:cacheprovider "$@" || status=$?

cat <<DONE

== clean up when you are done
  kubectl delete namespace $test_ns
  $helm uninstall $release --namespace $operator_ns   # CRDs are kept (crds.keep)
  kubectl delete -f crds/                              # only to remove every Headwater object
$( [ "${SKIP_KIND:-0}" = 1 ] || echo "  kind delete cluster --name $cluster                 # or all of it at once" )
DONE
exit "$status"
