#!/usr/bin/env bash
# Sanitizer job (.ci/run runs it after the main tests). Builds pyrnn._core with PYRNN_SANITIZE=ON
# (AddressSanitizer + UndefinedBehaviorSanitizer, every fresh native buffer and output array
# filled with NaN) in build/san, stages it with the Python sources in build/san/stage (the
# checkout's pyrnn/ is left alone), and runs the native tests below with the ASan runtime
# preloaded. Any sanitizer report is fatal; exits non-zero on a report or a failed test.
#
# The tests, each on every ISA this CPU has (their `isa` fixture), chosen to reach every kernel
# path while staying within a few minutes on 2 cores:
#   test_uninitialised.py  native forward + BPTT against the oracle over every feature that shapes
#                          workspace and padding (cells, projection, directions, stacks, bias,
#                          lengths 0 / partial / full, odd sizes, 1 and 2 threads, both dtypes):
#                          with the NaN poison a read of memory no kernel wrote fails here
#   test_layers_oracle.py  the full native-vs-oracle parity grid (every cell and feature, odd sizes)
#   test_api.py            every argument error (C++ exceptions through the bindings)
#   test_math.py, test_gemm.py  the vector maths and the GEMM edge tiles, every ISA
#   test_determinism.py    1-3 kernel threads, batch invariance: the threaded recurrences
#   test_robustness.py     T = 10,000, 1,000-step BPTT, huge and NaN inputs, non-finite padding
#   test_concurrency.py    8 Python threads in the kernels at once, set_num_threads while running
#   test_lifetime.py       tapes outliving their model, weights replaced between forward and
#                          backward (the RSS test skips itself: ASan's quarantine holds freed memory)
# Not run: test_reference.py (the NumPy oracle alone; no native code).
#
# Usage: bash .ci/sanitize.sh [extra pytest arguments]
# Python: the active virtual environment's; outside one, .venv-san (with the system's packages)
# is created and used, so nothing is installed into a shared environment. LeakSanitizer is off
# for the Python process (CPython keeps its interned objects at exit); see docs/HACKING.md for
# the leak check.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
started=$SECONDS

python=$(command -v python || command -v python3)
if ! "$python" -c 'import sys; sys.exit(sys.prefix == sys.base_prefix)'; then
  [ -x .venv-san/bin/python ] || "$python" -m venv --system-site-packages .venv-san
  python=$root/.venv-san/bin/python
fi
missing=()
"$python" -c 'import pybind11' 2>/dev/null || missing+=(pybind11)
"$python" -c 'import numpy' 2>/dev/null || missing+=(numpy)
"$python" -c 'import pytest' 2>/dev/null || missing+=(pytest)
command -v cmake >/dev/null || missing+=(cmake)
command -v ninja >/dev/null || missing+=(ninja)
if [ ${#missing[@]} -gt 0 ]; then "$python" -m pip install -q "${missing[@]}"; fi
export PATH="$(dirname "$python"):$PATH"  # cmake / ninja installed into the environment

echo "== sanitizer build (ASan + UBSan) in build/san"
cmake -S . -B build/san -G Ninja -DPYRNN_SANITIZE=ON -DPython_EXECUTABLE="$python" \
  -Dpybind11_DIR="$("$python" -m pybind11 --cmakedir)" >/dev/null
cmake --build build/san
rm -rf build/san/stage
mkdir -p build/san/stage/pyrnn
cp pyrnn/*.py build/san/stage/pyrnn/
cp build/san/_core*.so build/san/stage/pyrnn/

# libstdc++ too: loaded later by the extension, ASan would find no real __cxa_throw and abort
# ("CHECK failed ... real___cxa_throw") on the first C++ exception, e.g. an argument error.
LD_PRELOAD="$(g++ -print-file-name=libasan.so) $(g++ -print-file-name=libstdc++.so)"
export LD_PRELOAD
# Reports go to files as well as stderr, since pytest's capture of stderr dies with the process.
reports=$root/build/san/reports
rm -rf "$reports"
mkdir -p "$reports"
export ASAN_OPTIONS=halt_on_error=1:detect_leaks=0:allocator_may_return_null=1:detect_stack_use_after_return=1:log_path=$reports/asan
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:log_path=$reports/ubsan
build_seconds=$((SECONDS - started))

# From the stage, `import pyrnn` finds the sanitized module first, whatever the checkout holds.
cd build/san/stage
"$python" -c '
import pyrnn, sys
info = pyrnn.build_info()
assert info["sanitized"], "the staged _core is not a sanitizer build: " + pyrnn._core.__file__
print("== sanitized _core:", pyrnn._core.__file__, "ISAs:", ", ".join(info["available_isas"]))'

tests=(test_uninitialised.py test_layers_oracle.py test_api.py test_math.py test_gemm.py test_determinism.py
       test_robustness.py test_concurrency.py test_lifetime.py test_streaming.py)
status=0
"$python" -m pytest -p no:cacheprovider --rootdir="$root" -c "$root/pyproject.toml" -o addopts=-ra -q \
  "${tests[@]/#/$root/tests/}" "$@" 2>&1 | tee "$root/build/san/pytest.log" || status=$?
if [ -n "$(ls -A "$reports")" ] || grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$root/build/san/pytest.log"; then
  cat "$reports"/* 2>/dev/null || true
  echo "sanitize.sh: a sanitizer reported an error (reports above and in build/san/reports)" >&2
  status=1
fi
echo "== sanitizer job: build ${build_seconds}s, total $((SECONDS - started))s, exit $status"
exit $status
