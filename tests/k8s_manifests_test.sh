#!/usr/bin/env bash
# The deployment files of issue 16: deploy/kubernetes/*.yaml pass the Kubernetes API's schemas
# (offline, deploy/validate/validate.mjs), broken copies of them fail naming the field, and the
# image and manifests keep their contract (entrypoint, health check through `jcs ping`, stop
# signal).
set -uo pipefail
root="${TEST_SRCDIR}/jcs"
validate="${root}/deploy/validate/validate.mjs"
k8s="${root}/deploy/kubernetes"
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

if [[ ! -d "${root}/deploy/validate/node_modules/kubernetes-models" ]]; then
  echo "FAIL: deploy/validate/node_modules is missing: ./bazelw test installs it (npm ci in deploy/validate)" >&2
  exit 1
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# The real manifests are valid.
if ! out="$(node "$validate" "$k8s/deployment.yaml" "$k8s/daemonset.yaml" 2>&1)"; then
  fail "the manifests do not validate: $out"
fi
[[ "$out" == "3 documents valid" ]] || fail "expected 3 valid documents, got: $out"

# Each deliberately wrong field must be refused, with the field's path in the message.
expect_invalid() {  # NAME SED-EXPRESSION EXPECTED-PATH-FRAGMENT
  local broken="$tmp/$1.yaml"
  sed "$2" "$k8s/deployment.yaml" >"$broken"
  if cmp -s "$broken" "$k8s/deployment.yaml"; then
    fail "$1: the edit changed nothing (the test is stale)"
    return
  fi
  local msg
  if msg="$(node "$validate" "$broken" 2>&1)"; then
    fail "$1: a broken manifest validated: $msg"
  elif [[ "$msg" != *"$3"* ]]; then
    fail "$1: the error does not name $3: $msg"
  fi
}
expect_invalid procmount_enum 's/procMount: Unmasked/procMount: Unmaskd/' \
  'securityContext/procMount'
expect_invalid caps_not_a_list 's/add: \[.*\]/add: SETUID/' 'capabilities/add'
expect_invalid seccomp_enum 's/type: Unconfined/type: Off/' 'seccompProfile/type'
expect_invalid host_users_type 's/hostUsers: false/hostUsers: "no"/' 'spec/hostUsers'
expect_invalid probe_not_a_list 's/command: \["jcs", "ping", "--timeout", "2"\]/command: jcs ping/' \
  'readinessProbe/exec/command'
expect_invalid unknown_kind 's/^kind: Deployment/kind: Deploymint/' 'unknown apiVersion/kind'

# The contract between the image and the manifests.
for f in deployment daemonset; do
  grep -q 'command: \["jcs", "ping"' "$k8s/$f.yaml" || fail "$f: probes are not jcs ping"
  grep -q 'livenessProbe:' "$k8s/$f.yaml" || fail "$f: no livenessProbe"
  grep -q 'readinessProbe:' "$k8s/$f.yaml" || fail "$f: no readinessProbe"
done
dockerfile="${root}/deploy/Dockerfile"
grep -qx 'ENTRYPOINT \["jcs", "serve"\]' "$dockerfile" || fail "Dockerfile: ENTRYPOINT is not jcs serve"
grep -qx 'STOPSIGNAL SIGTERM' "$dockerfile" || fail "Dockerfile: no STOPSIGNAL SIGTERM"
grep -q 'CMD \["jcs", "ping"' "$dockerfile" || fail "Dockerfile: HEALTHCHECK is not jcs ping"
grep -q '^VOLUME \["/run/jcs", "/var/lib/jcs"\]' "$dockerfile" || fail "Dockerfile: socket/state volumes"
for installed in "docs/man/jcs.1 /usr/share/man/man1/jcs.1" \
  "docs/completion/jcs.bash /usr/share/bash-completion/completions/jcs" \
  "docs/completion/_jcs /usr/share/zsh/vendor-completions/_jcs"; do
  grep -qx "COPY ${installed}" "$dockerfile" || fail "Dockerfile: does not install ${installed%% *}"
done

if ((failures > 0)); then
  echo "$failures failure(s)" >&2
  exit 1
fi
echo "PASS"
