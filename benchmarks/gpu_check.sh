#!/usr/bin/env bash
# The GPU checks in one short run, under one time limit, ending in one table:
#   1. bench_fit.py on the GPU: fit/naive (target >= 3x, with AMP, channels_last and the tensor loader);
#   2. bench_recipe.py: seconds per epoch of lesson 07's CIFAR-10 ResNet-18 recipe at full size (shapes data);
#   3. every lesson's full rehearsal: `course rehearse --profile full` (shapes world at real sizes,
#      random weights), one lesson at a time, until the time limit; the rest are listed as not run.
#
#   bash benchmarks/gpu_check.sh                       # on a GPU machine, from the repository root
#   GPU_CHECK_LIMIT=600 FIT_ARGS="--n 512 --rounds 2" RECIPE_N=64 RECIPE_TEST=64 RECIPE_BATCH=32 \
#     RECIPE_EPOCHS=2 LESSONS="00 04" PROFILE=light REHEARSE_ARGS=--no-write \
#     bash benchmarks/gpu_check.sh                     # a CPU check of the script, everything turned down
#
# Knobs (environment): GPU_CHECK_LIMIT seconds for everything (default 840); FIT_ARGS for bench_fit.py
# (default: its full run); RECIPE_N/RECIPE_TEST/RECIPE_BATCH/RECIPE_EPOCHS for bench_recipe.py (default
# 50000/10000/512/3); LESSONS (default: every lesson) and PROFILE (default full) for the rehearsals;
# REHEARSE_ARGS more arguments for `course rehearse` (e.g. --no-write to leave docs/measurements alone);
# DEVICE (default: cuda when torch sees one, else cpu); PYTHON (default: python). Logs, the rehearsal's
# measurements (docs/measurements/rehearse-<profile>.json) and report go to $OUT (default build/gpu_check).
# Datasets: the shapes world at real sizes is generated on first use (CIFAR-10: about a minute; Pets at
# 448x448: several minutes) - `python -m course_utils data shapes --real-sizes cifar10 pets` ahead of time
# keeps that out of the limit.
set -u
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
LIMIT=${GPU_CHECK_LIMIT:-840}
OUT=${OUT:-build/gpu_check}
PROFILE=${PROFILE:-full}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
DEVICE=${DEVICE:-$($PYTHON -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")}
export COURSE_DEVICE=$DEVICE COURSE_OFFLINE=1
start=$(date +%s)
left() { echo $(( LIMIT - ($(date +%s) - start) )); }
rows=()
row() { rows+=("$(printf '| %-34s | %-40s | %-8s |' "$1" "$2" "$3")"); }

run_step() {  # name, log file, command...: run under the time left, return its exit code (124 = out of time)
  local name=$1 log=$2; shift 2
  local t=$(left)
  if (( t < 10 )); then echo "skip $name: time limit reached" | tee "$log"; return 124; fi
  echo "== $name (at most ${t}s)"
  timeout --kill-after=10 "$t" "$@" >"$log" 2>&1
  local rc=$?
  tail -n 4 "$log"
  return $rc
}

echo "gpu_check: device $DEVICE, limit ${LIMIT}s, profile $PROFILE, output $OUT"
$PYTHON -c "import torch, platform; print('torch', torch.__version__, '|', torch.cuda.get_device_name(0) if torch.cuda.is_available() else platform.processor() or platform.machine())" | tee "$OUT/versions.txt"

# 1. fit against the naive loop
t0=$(date +%s)
run_step bench_fit "$OUT/bench_fit.log" $PYTHON benchmarks/bench_fit.py --device "$DEVICE" ${FIT_ARGS:-}
rc=$?
ratio=$(grep -o 'fit/naive median [0-9.]*' "$OUT/bench_fit.log" | awk '{print $3}')
if [[ $rc -eq 0 && -n $ratio ]]; then
  verdict=$(awk -v r="$ratio" -v d="$DEVICE" 'BEGIN{print (d!="cuda") ? "(CPU: no target)" : (r >= 3 ? "ok" : "BELOW 3x")}')
  row "bench_fit fit/naive (target >= 3x)" "${ratio}x; $(grep -o 'fit/bound median [0-9.]*' "$OUT/bench_fit.log")" "$verdict"
else
  row "bench_fit" "failed (exit $rc), see bench_fit.log" "FAILED"
fi
echo "   ($(( $(date +%s) - t0 )) s)"

# 2. lesson 07's recipe at full size
t0=$(date +%s)
run_step bench_recipe "$OUT/bench_recipe.log" $PYTHON benchmarks/bench_recipe.py --device "$DEVICE" \
  --n "${RECIPE_N:-50000}" --test "${RECIPE_TEST:-10000}" --batch "${RECIPE_BATCH:-512}" --epochs "${RECIPE_EPOCHS:-3}"
rc=$?
line=$(grep '^recipe seconds/epoch' "$OUT/bench_recipe.log" | sed 's/^recipe //')
if [[ $rc -eq 0 && -n $line ]]; then row "07 recipe, ${RECIPE_N:-50000} images" "$line" "ok"
else row "07 recipe" "failed (exit $rc), see bench_recipe.log" "FAILED"; fi
echo "   ($(( $(date +%s) - t0 )) s)"

# 3. every lesson's rehearsal, one at a time, while time is left
lessons=${LESSONS:-$(ls notebooks/[0-9][0-9]_*.ipynb | xargs -n1 basename | cut -c1-2 | tr '\n' ' ')}
for n in $lessons; do
  run_step "rehearsal $n" "$OUT/rehearse_$n.log" $PYTHON -m course_utils rehearse --profile "$PROFILE" \
    --only "$n" --threads 0 --timeout "$(left)" ${REHEARSE_ARGS:-}
  rc=$?
  name=$(ls notebooks/${n}_*.ipynb 2>/dev/null | xargs -n1 basename 2>/dev/null | sed 's/.ipynb//')
  summary=$(grep -E "^${name:-$n}[^ ]* +(ok|failed|out-of-range|no-metrics)" "$OUT/rehearse_$n.log" | tail -n 1)
  if [[ $rc -eq 124 || $rc -eq 137 ]]; then row "$PROFILE rehearsal ${name:-$n}" "not finished: time limit" "-"
  elif [[ -n $summary ]]; then
    read -r _ status wall cpu _ <<<"$summary"
    row "$PROFILE rehearsal ${name:-$n}" "$status, $wall min wall, $cpu min CPU" "$([[ $status == ok ]] && echo ok || echo FAILED)"
  else row "$PROFILE rehearsal ${name:-$n}" "failed (exit $rc), see rehearse_$n.log" "FAILED"; fi
done
cp docs/measurements/rehearse-"$PROFILE".json "$OUT"/ 2>/dev/null
cp "${COURSE_BUILD:-build}"/report.md "$OUT"/ 2>/dev/null

echo
echo "gpu_check on $(cat "$OUT/versions.txt"), $(( $(date +%s) - start )) s of ${LIMIT} s"
printf '| %-34s | %-40s | %-8s |\n' "check" "result" "verdict"
printf '|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..36})" "$(printf -- '-%.0s' {1..42})" "$(printf -- '-%.0s' {1..10})"
printf '%s\n' "${rows[@]}" | tee "$OUT/table.md"
