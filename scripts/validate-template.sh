#!/usr/bin/env bash
# Lints template.yaml with cfn-lint and `sam validate --lint`, offline and without AWS
# credentials. The tools live in a virtualenv at .venv-sam (git-ignored), created and filled on
# first use; later runs reuse it.
#
# Fails on any cfn-lint error or warning, and on any `sam validate --lint` finding.
#
# Environment:
#   AWS_DEFAULT_REGION  region to lint for (default us-east-1)
#   ECHO_SAM_VENV       virtualenv to use (default <repo>/.venv-sam)
#   PYTHON              interpreter that creates the virtualenv (default python3)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${ECHO_SAM_VENV:-$repo/.venv-sam}"
python="${PYTHON:-python3}"

export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
# Linting makes no AWS calls; keep SAM CLI from sending telemetry too.
export SAM_CLI_TELEMETRY="${SAM_CLI_TELEMETRY:-0}"

if [[ ! -x "$venv/bin/python" ]]; then
    echo "==> creating virtualenv $venv"
    if ! "$python" -m venv "$venv"; then
        echo "error: could not create $venv with '$python -m venv' (on Debian/Ubuntu: apt-get install python3-venv)" >&2
        exit 1
    fi
fi

missing=()
[[ -x "$venv/bin/sam" ]] || missing+=(aws-sam-cli)
[[ -x "$venv/bin/cfn-lint" ]] || missing+=(cfn-lint)
if ((${#missing[@]} > 0)); then
    echo "==> installing ${missing[*]} into $venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${missing[@]}"
fi

cd "$repo"

echo "==> cfn-lint $("$venv/bin/cfn-lint" --version | awk '{print $NF}') (region $AWS_DEFAULT_REGION)"
"$venv/bin/cfn-lint" --regions "$AWS_DEFAULT_REGION" --non-zero-exit-code warning -- template.yaml

echo "==> sam validate --lint ($("$venv/bin/sam" --version))"
"$venv/bin/sam" validate --lint --template template.yaml --region "$AWS_DEFAULT_REGION"

echo "==> template.yaml passes cfn-lint and sam validate --lint"
