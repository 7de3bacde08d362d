#!/usr/bin/env bash
# Chooses a trainer for the Auckland 3-route subset on the morning alone, then scores the choice once on the afternoon
# (docs/PREDICTION.md, "Real data"). Needs ../shared/data and a Release build (dotnet build src/Dashboard -c Release).
# Usage: bench/auckland-trainer-selection.sh [work folder, default /tmp/fleet-trainer-selection]
set -euo pipefail
cd "$(dirname "$0")/.."
A=../shared/data/gtfs-rt/auckland-tripupdates_2016-05-19/auckland-tripupdates_2016-05-19.tar.gz
G=../shared/data/gtfs-static/auckland_2016-05_routes005-007-008.zip
[ -f "$A" ] && [ -f "$G" ] || { echo "needs $A and $G" >&2; exit 2; }
work=${1:-/tmp/fleet-trainer-selection}
mkdir -p "$work"
fleet=(dotnet artifacts/bin/Fleet.Dashboard/release/fleet.dll)

# name, then fleet train options
candidates=(
  "gbdt|"
  "gbdt-lr0.03|--learning-rate 0.03"
  "gbdt-lr0.01|--learning-rate 0.01"
  "gbdt-leaf200|--min-leaf 200"
  "gbdt-leaves8|--leaves 8"
  "gbdt-lr0.03-leaves8|--learning-rate 0.03 --leaves 8"
  "lightgbm|--trainer lightgbm"
  "fasttree|--trainer fasttree"
)

# Share of the delay carried forward's MAE the model saves at 5-10 and 10-15 min, from an evaluate --json.
score() {
  python3 - "$1" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))["predictors"]
print(" ".join(f"{1 - p['model'][b]['mae'] / p['delay'][b]['mae']:.3f}" for b in ("5-10", "10-15")))
PY
}

best=""; best_sum=-1
for c in "${candidates[@]}"; do
  name=${c%%|*}; opts=${c#*|}
  # shellcheck disable=SC2086
  "${fleet[@]}" train --gtfs "$G" --gtfs-rt "$A" --window 00:00-11:00 --validate-on-latest --out "$work/$name.bin" $opts >/dev/null 2>&1
  "${fleet[@]}" evaluate --gtfs "$G" --gtfs-rt "$A" --window 11:00-14:00 --model "$work/$name.bin" --json > "$work/$name.json" 2>/dev/null
  read -r a b <<<"$(score "$work/$name.json")"
  echo "validation 11-14 h  $name: $a at 5-10 min, $b at 10-15 min below the delay carried forward"
  if python3 -c "import sys; sys.exit(0 if $a + $b > $best_sum else 1)"; then best=$c; best_sum=$(python3 -c "print($a + $b)"); fi
done

name=${best%%|*}; opts=${best#*|}
echo "chosen: $name"
# shellcheck disable=SC2086
"${fleet[@]}" train --gtfs "$G" --gtfs-rt "$A" --window 00:00-14:00 --validate-on-latest --out "$work/final.bin" $opts >/dev/null 2>&1
"${fleet[@]}" evaluate --gtfs "$G" --gtfs-rt "$A" --window 14:00-24:00 --model "$work/final.bin" --json > "$work/final.json" 2>/dev/null
read -r a b <<<"$(score "$work/final.json")"
echo "scored once on 14-24 h  $name: $a at 5-10 min, $b at 10-15 min below the delay carried forward (target 0.20 each)"
