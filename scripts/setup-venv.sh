#!/usr/bin/env bash
# Sets up the virtualenv `make` uses, one line per step (docs/testing.md, "Setting up").
#
#   scripts/setup-venv.sh VENV demo   # the package and what it needs to run: make demo
#   scripts/setup-venv.sh VENV test   # the same plus the test extras: make test, make check
#
# The installer is uv (a PyPI package, installed into the venv with pip; it installs in parallel
# and is several times faster than pip). SEGSYNC_INSTALLER=pip uses pip alone; if uv cannot be
# installed, pip is used too. Modules are byte-compiled as they are installed. The installers'
# own output goes to VENV/install.log, printed (its end) only when a step fails.
set -euo pipefail

venv=${1:?usage: setup-venv.sh VENV demo|test}
what=${2:?usage: setup-venv.sh VENV demo|test}
python=${PYTHON:-python3}
installer=${SEGSYNC_INSTALLER:-uv}
uv_version=0.13.9 # pinned so every machine installs with the same resolver

case $what in
demo) target=. ;;
test) target='.[test]' ;;
*)
    echo "setup-venv.sh: unknown set $what (demo or test)" >&2
    exit 2
    ;;
esac

log=$venv/install.log
started=$SECONDS

step() {
    step_started=$SECONDS
    printf '  %-56s' "$1"
}
done_step() { printf 'done (%ds)\n' "$((SECONDS - step_started))"; }
fail() {
    printf 'FAILED\n' >&2
    echo "setup failed while $1; the end of $log:" >&2
    tail -n 30 "$log" >&2
    exit 1
}

echo "setting up $venv ($what)"
if [[ ! -x $venv/bin/python ]]; then
    step "creating $venv with $($python --version 2>&1)"
    mkdir -p "$venv"
    $python -m venv "$venv" >"$log.tmp" 2>&1 || { mv "$log.tmp" "$log"; fail "creating the venv"; }
    mv "$log.tmp" "$log"
    done_step
fi
: >>"$log"

if [[ $installer == uv && ! -x $venv/bin/uv ]]; then
    step "installing the installer (uv $uv_version)"
    if "$venv/bin/python" -m pip install --quiet "uv==$uv_version" >>"$log" 2>&1; then
        done_step
    else
        printf 'unavailable, using pip\n'
        installer=pip
    fi
fi

step "installing segsync and its dependencies ($what)"
if [[ $installer == uv ]]; then
    "$venv/bin/uv" pip install --compile-bytecode --python "$venv/bin/python" -e "$target" >>"$log" 2>&1 ||
        fail "installing with uv"
else
    "$venv/bin/python" -m pip install --quiet -e "$target" >>"$log" 2>&1 ||
        fail "installing with pip"
fi
done_step

# Byte-compiled modules let every process start without compiling its imports first (pip does
# this for what it installs, uv with --compile-bytecode above). Our own sources are installed
# editable, so they are compiled here: where PYTHONDONTWRITEBYTECODE is set, Python never writes
# them itself, and each `segsync` command would spend most of a second compiling (bench/startup.py).
step "compiling segsync's modules"
"$venv/bin/python" -m compileall -q src >>"$log" 2>&1 || fail "compiling segsync's modules"
done_step
echo "ready in $((SECONDS - started))s: $venv/bin/segsync (add $venv/bin to your PATH to type plain segsync)"
