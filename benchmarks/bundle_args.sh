# Sourced by the service benchmarks' run.sh: builds doppel, takes --bundle DIR out of the
# arguments (training the blade bundle when it is missing), and sets $bundle, $args (the rest)
# and $name (the machine's name for benchmarks/results/, DOPPEL_MACHINE or cpu-<host>).
scripts/build
bundle=""
args=()
while [ $# -gt 0 ]; do
  if [ "$1" = "--bundle" ]; then bundle="$2"; shift 2; else args+=("$1"); shift; fi
done
if [ -z "$bundle" ]; then
  bundle="$(mktemp -d)/blade-bundle"
  build/bin/doppel train examples/blade/twin.json --out "$bundle" 2>&1 | grep -v "epoch [0-9]*[1-9]00:"
fi
mkdir -p benchmarks/results
name="${DOPPEL_MACHINE:-cpu-$(hostname -s)}"
