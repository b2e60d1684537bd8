#!/usr/bin/env bash
# Offline checks of everything under deploy/ (`make deploy-check`):
#
#   1. pinned tools: helm and terraform built from the Go module proxy into
#      bin/ once (minutes each), the checker (deploy/check, its own Go module)
#   2. the checker's own tests, and a broken manifest that must be refused
#   3. the Helm chart: `helm lint --strict` and `helm template` with the
#      default values, values-production.yaml and a values file that turns
#      every option on; each rendering strict-decoded into the Kubernetes and
#      Prometheus Operator API types and checked across objects; a misspelt
#      value must be refused by values.schema.json
#   4. alert rules (the chart's canonical file and its standalone copy) and
#      the Grafana dashboard: structure, PromQL, and only the gateway's metrics
#   5. Terraform: `terraform fmt -check` and the provider-free part of
#      `terraform validate` (the providers cannot be downloaded here)
#   6. the Dockerfile's build command, run as is when cmd/smsgw exists
#
# Every check runs even after one fails; the exit status is 1 if any failed.
# Nothing here needs a network other than the Go module proxy (first run).
set -euo pipefail
cd "$(dirname "$0")/.."

readonly HELM_VERSION=v3.22.0
readonly TERRAFORM_VERSION=v1.8.5
# Kubernetes version `helm template` renders for (the chart needs >= 1.30).
readonly KUBE_VERSION=1.33.0
readonly CHART=deploy/helm/smsgw
readonly BIN=$PWD/bin
# The exact build command of deploy/Dockerfile's build stage.
readonly BUILD_CMD='CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o smsgw ./cmd/smsgw'

export PATH=$PATH:/usr/local/go/bin
# Tools built here are kept outside the clone too, as .ci/run does for its own.
tools_cache=${SMSGW_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/smsgw-tools}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export HELM_CACHE_HOME=$tmp/helm/cache HELM_CONFIG_HOME=$tmp/helm/config HELM_DATA_HOME=$tmp/helm/data
export TF_CLI_CONFIG_FILE=$tmp/terraformrc TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1
: >"$TF_CLI_CONFIG_FILE"

failed=()
started=$SECONDS

step() { printf '\n==> %s\n' "$*"; }

# check NAME COMMAND...: runs one check, records a failure, never stops.
check() {
  local name=$1
  shift
  if "$@"; then
    echo "ok: $name"
  else
    echo "FAILED: $name" >&2
    failed+=("$name")
  fi
}

# tool NAME PACKAGE VERSION: makes bin/NAME the pinned version. A binary built
# by `go install` records its module version, so an existing one is checked,
# not trusted by name.
tool() {
  local name=$1 pkg=$2 version=$3 module cached
  cached=$tools_cache/$name-$version
  module=$(go version -m "$BIN/$name" 2>/dev/null | awk '$1 == "mod" { print $2 "@" $3 }') || true
  if [[ $module != *"@$version" ]]; then
    if [[ -x $cached ]]; then
      mkdir -p "$BIN"
      cp "$cached" "$BIN/$name"
      echo "$name $version from $tools_cache"
    else
      step "building $name $version into bin/ (once; several minutes)"
      local t0=$SECONDS
      GOBIN=$BIN GOFLAGS=-buildvcs=false go install "$pkg@$version"
      echo "$name $version built in $((SECONDS - t0)) s"
    fi
  fi
  if [[ ! -x $cached ]]; then
    mkdir -p "$tools_cache"
    cp -f "$BIN/$name" "$cached"
  fi
}

# ---- 1. tools ----------------------------------------------------------------
step "tools"
tool helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION"
tool terraform github.com/hashicorp/terraform "$TERRAFORM_VERSION"
t0=$SECONDS
(cd deploy/check && GOFLAGS=-buildvcs=false go build -o "$BIN/deploy-check" .)
echo "deploy-check built in $((SECONDS - t0)) s"
helm=$BIN/helm terraform=$BIN/terraform checker=$BIN/deploy-check

# ---- 2. the checker checks itself --------------------------------------------
step "checker tests"
check "deploy/check go vet" bash -c 'cd deploy/check && go vet ./...'
check "deploy/check go test" bash -c 'cd deploy/check && go test -count=1 ./...'
refuses_broken_manifest() {
  if "$checker" manifests deploy/check/testdata/manifests-misspelled.yaml >"$tmp/broken.out" 2>&1; then
    echo "the checker accepted a manifest with a misspelt field" >&2
    return 1
  fi
  grep -q 'unknown field "spec.replicass"' "$tmp/broken.out"
}
check "checker refuses a misspelt field" refuses_broken_manifest

# ---- 3. Helm chart -----------------------------------------------------------
step "helm chart ($("$helm" version --short))"
render() { # NAME VALUES-FILE...
  local name=$1 args=()
  shift
  for f in "$@"; do args+=(-f "$f"); done
  "$helm" lint --strict "$CHART" "${args[@]}" &&
    "$helm" template smsgw "$CHART" --namespace smsgw --kube-version "$KUBE_VERSION" "${args[@]}" >"$tmp/$name.yaml" &&
    "$checker" manifests "$tmp/$name.yaml"
}
check "chart, default values" render default
check "chart, values-production.yaml" render production "$CHART/values-production.yaml"
check "chart, every option" render all-features deploy/check/testdata/values-all-features.yaml
refuses_misspelt_value() {
  if "$helm" template smsgw "$CHART" --kube-version "$KUBE_VERSION" --set api.replicaCont=3 >/dev/null 2>"$tmp/schema.out"; then
    echo "values.schema.json accepted api.replicaCont" >&2
    return 1
  fi
  grep -q "replicaCont" "$tmp/schema.out"
}
check "values schema refuses a misspelt value" refuses_misspelt_value
rolls_on_config_change() {
  [[ -s $tmp/default.yaml ]] && grep -q 'checksum/config:' "$tmp/default.yaml"
}
check "pods carry the config checksum" rolls_on_config_change

# ---- 4. alerts and dashboard -------------------------------------------------
step "alert rules and dashboard"
alerts_copy_identical() {
  cmp -s "$CHART/files/alerts.yaml" deploy/prometheus/alerts.yaml && return 0
  echo "deploy/prometheus/alerts.yaml differs from the canonical $CHART/files/alerts.yaml; run:" >&2
  echo "  cp $CHART/files/alerts.yaml deploy/prometheus/alerts.yaml" >&2
  return 1
}
check "alerts copy matches the chart's" alerts_copy_identical
check "alert rules" "$checker" rules deploy/prometheus/alerts.yaml
check "grafana dashboard" "$checker" dashboard deploy/grafana/smsgw-dashboard.json

# ---- 5. Terraform ------------------------------------------------------------
step "terraform ($("$terraform" version | head -n1))"
check "terraform fmt" "$terraform" fmt -check -recursive -diff deploy/terraform
check "terraform references and module calls" "$checker" terraform deploy/terraform deploy/terraform/bootstrap

# ---- 6. image build command --------------------------------------------------
step "image build"
dockerfile_build_command() {
  grep -qF -- "$BUILD_CMD" deploy/Dockerfile && return 0
  echo "deploy/Dockerfile no longer runs: $BUILD_CMD" >&2
  return 1
}
check "Dockerfile build command" dockerfile_build_command
build_like_dockerfile() {
  # The build stage's command word for word, except that the binary goes to
  # the scratch directory instead of the working tree.
  local t0=$SECONDS
  GOFLAGS=-buildvcs=false eval "${BUILD_CMD/-o smsgw /-o $tmp/smsgw }" || return 1
  echo "smsgw built in $((SECONDS - t0)) s, $(du -h "$tmp/smsgw" | cut -f1)"
  if go version -m "$tmp/smsgw" | grep -q 'CGO_ENABLED=0'; then
    return 0
  fi
  echo "the binary was not built with CGO_ENABLED=0" >&2
  return 1
}
# The config.yaml of each rendered ConfigMap loads in the gateway itself.
# Secrets stand in as values of the right form.
rendered_configs_load() {
  [[ -x $tmp/smsgw ]] || return 1
  ACME_API_KEY_HASH=$("$tmp/smsgw" hash-key stand-in) ACME_SMPP_PASSWORD=$("$tmp/smsgw" hash-password stand-in) \
    "$tmp/smsgw" check-config -manifests "$tmp/default.yaml" "$tmp/production.yaml" "$tmp/all-features.yaml"
}
if [[ -d cmd/smsgw ]]; then
  check "binary builds as in the Dockerfile" build_like_dockerfile
  check "rendered config.yaml loads in smsgw" rendered_configs_load
else
  echo "skipped: cmd/smsgw does not exist yet"
fi

# ---- summary -----------------------------------------------------------------
echo
if ((${#failed[@]} > 0)); then
  printf 'deploy-check: %d check(s) failed in %d s:\n' "${#failed[@]}" "$((SECONDS - started))" >&2
  printf '  %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "deploy-check: all checks passed in $((SECONDS - started)) s"
