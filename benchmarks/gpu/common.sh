# Shared by benchmarks/gpu_first_run.sh and benchmarks/gpu_full_run.sh (sourced, not run).
#
# A lent GPU node gives one command at most 10 minutes, returns at most 8 files from $OUT and
# has no package registry. So each script runs named phases against one deadline (BUDGET_S
# seconds from its start), each phase under its own `timeout`, and rewrites its summary JSON
# after every phase: whatever happens, the files that come back say what ran, what passed and
# where it stopped. Off a GPU node (a rehearsal) everything runs the same way and the phases
# that need a GPU fail, saying so.
set -uo pipefail
export BUDGET_S="${BUDGET_S:-$DEFAULT_BUDGET_S}" RESERVE_S="${RESERVE_S:-15}"
export build_dir="${BUILD_DIR:-build-gpu}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"
out="${OUT:-$repo/benchmarks/results/gpu-run}"
mkdir -p "$out"
work="$(mktemp -d)"          # logs and JUnit files before they are compressed into $out
started=$(date +%s)
phases="$work/phases.tsv"    # name <TAB> status <TAB> seconds <TAB> note
: >"$phases"
export DOPPEL_COMMIT="${DOPPEL_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}"
export PYTHONUNBUFFERED=1

seconds_left() { echo $(( BUDGET_S - ($(date +%s) - started) )); }

record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$phases"; }

# phase NAME LIMIT_S FUNCTION [ARGS...]: runs an exported function under `timeout`, no longer
# than LIMIT_S nor past the deadline (less RESERVE_S kept for the summary); records the result.
phase() {
  local name="$1" limit="$2"
  shift 2
  local left=$(( $(seconds_left) - RESERVE_S ))
  (( left < limit )) && limit=$left
  if (( limit < 5 )); then
    record "$name" skipped 0 "no time left before the deadline"
    echo "== $name: skipped (no time left)"
    summarize
    return 1
  fi
  echo "== $name (at most ${limit} s, $(seconds_left) s left)"
  local t0 rc dt
  t0=$(date +%s)
  export PHASE_DEADLINE=$(( t0 + limit ))
  timeout --kill-after=10 "$limit" bash -c '"$@"' bash "$@"
  rc=$?
  dt=$(( $(date +%s) - t0 ))
  if (( rc == 0 )); then record "$name" ok "$dt" ""
  elif (( rc == 124 || rc == 137 )); then record "$name" timeout "$dt" "stopped after ${limit} s"
  else record "$name" failed "$dt" "exit $rc"
  fi
  echo "== $name: $(tail -1 "$phases" | cut -f2) in ${dt} s"
  keep_logs $LOGS  # after every phase: a call cut short still brings its logs back
  summarize
  return $rc
}

# The Debian build dependencies: unpacked from the carried .deps/debs (scripts/bundle-deps)
# where they are not installed.
deps() {
  if dpkg-query -W -f='${Status}' libsuitesparse-dev 2>/dev/null | grep -q "install ok installed"; then
    echo "Debian build dependencies installed"
  elif [ -d .deps/debs ]; then
    [ -f .deps/prefix/env.sh ] || scripts/bundle-deps unpack .deps/debs .deps/prefix
  else
    echo "neither installed nor carried: run scripts/bundle-deps fetch here and carry .deps"
    return 1
  fi
}

load_deps_env() { [ -f .deps/prefix/env.sh ] && . .deps/prefix/env.sh; return 0; }

# LibTorch: the PyTorch installation's (CUDA-enabled) where there is one, else Debian's.
torch_prefix() { python3 -c 'import torch; print(torch.utils.cmake_prefix_path)' 2>/dev/null || true; }

machine() {
  {
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv 2>&1 ||
      echo "nvidia-smi: not available (no NVIDIA driver on this machine)"
    nvcc --version 2>&1 | tail -2
    python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available(), "cxx11 abi", torch.compiled_with_cxx11_abi())' 2>&1 | tail -1
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') x $(nproc)"
    uname -r
  } >"$work/machine.txt"
  cat "$work/machine.txt"
}

# configure BUILD_DIR: CUDA on, architecture 90 (CUDA_ARCH), LibTorch from PyTorch; checks that
# the kernels are built for sm_90 and nothing else (LibTorch's find module resets it).
configure() {
  local dir="$1" tp
  load_deps_env
  tp="$(torch_prefix)"
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDOPPEL_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCH:-90}" ${tp:+-DCMAKE_PREFIX_PATH="$tp"} || return 1
  local want="arch=compute_${CUDA_ARCH:-90},code=\[compute_${CUDA_ARCH:-90},sm_${CUDA_ARCH:-90}\]"
  grep -q "$want" "$dir/build.ninja" || { echo "build.ninja: kernels not built for sm_${CUDA_ARCH:-90}"; return 1; }
  if grep -o "arch=compute_[0-9a-z]*" "$dir/build.ninja" | sort -u | grep -vq "compute_${CUDA_ARCH:-90}\$"; then
    echo "build.ninja: other architectures leaked in:"; grep -o "arch=compute_[0-9a-z]*" "$dir/build.ninja" | sort -u
    return 1
  fi
  echo "build.ninja: kernels for sm_${CUDA_ARCH:-90} only"
}

build() { load_deps_env; cmake --build "$1" -j "$(nproc)" ${2:+--target $2}; }  # $2: targets (unquoted list)

# ctest_run BUILD_DIR NAME [CTEST ARGS...]: JUnit into $work/NAME.xml, log into $work/NAME.log.
ctest_run() {
  local dir="$1" name="$2"
  shift 2
  load_deps_env
  # --stop-time: ctest ends itself before the phase's timeout would kill it, so the JUnit file
  # (the names of what passed and failed) is still written. (--timeout would not do: every
  # test has its own TIMEOUT.)
  local stop
  stop="$(date -d "@$(( ${PHASE_DEADLINE:-$(( $(date +%s) + 3600 ))} - 15 ))" +%H:%M:%S)"
  (cd "$dir" && ctest --output-on-failure --output-junit "$work/$name.xml" --stop-time "$stop" "$@") >"$work/$name.log" 2>&1
  local rc=$?
  grep -E "tests passed|tests failed" "$work/$name.log" | tail -1
  return $rc
}

# Compresses the logs named into $out (gzip: the 8-file, 16 MiB-per-file return limits).
keep_logs() { for f in "$@"; do [ -f "$work/$f" ] && gzip -c "$work/$f" >"$out/$f.gz"; done; return 0; }

summarize() {
  python3 "$repo/benchmarks/gpu/summarize.py" --script "$SCRIPT_NAME" --phases "$phases" --work "$work" \
    --out "$out" --budget "$BUDGET_S" --elapsed $(( $(date +%s) - started )) >/dev/null 2>&1 || true
}

# Last: the summary, the verdict line, and the file count the device tool returns.
finish() {
  python3 "$repo/benchmarks/gpu/summarize.py" --script "$SCRIPT_NAME" --phases "$phases" --work "$work" \
    --out "$out" --budget "$BUDGET_S" --elapsed $(( $(date +%s) - started )) --final
  local files
  files=$(find "$out" -type f | wc -l)
  echo "files in $out: $files (at most 8 come back)"
  (( files <= 8 )) || echo "WARNING: more than 8 files in $out"
  rm -rf "$work"
}

export -f seconds_left record keep_logs deps load_deps_env torch_prefix machine configure build ctest_run
export repo out work started phases
