#!/usr/bin/env bash
# Trains on Auckland's 2016-05-19 (../shared/data) and scores on the next day, 2016-05-20, which the model never saw
# (docs/PREDICTION.md, "Real data"). The second day is not in ../shared/data: it is taken from the history of
# github.com/mrcagney/gtfsr_kit (MIT), commit 4eac9f3, folder data/auckland_gtfsr_trip_updates/, the same source as the
# first day, and packed like it into the work folder. Needs git, python3 and a Release build
# (dotnet build src/Dashboard -c Release).
# Usage: bench/auckland-next-day.sh [gtfsr_kit clone, default: cloned into the work folder] [work folder, default /tmp/fleet-next-day]
set -euo pipefail
cd "$(dirname "$0")/.."
A=../shared/data/gtfs-rt/auckland-tripupdates_2016-05-19/auckland-tripupdates_2016-05-19.tar.gz
G=../shared/data/gtfs-static/auckland_2016-05_routes005-007-008.zip
[ -f "$A" ] && [ -f "$G" ] || { echo "needs $A and $G" >&2; exit 2; }
work=${2:-/tmp/fleet-next-day}
mkdir -p "$work"
kit=${1:-$work/gtfsr_kit}
commit=4eac9f32d9046cc055aeb0a7aea7fa89520ec3f8
B=$work/auckland-tripupdates_2016-05-20.tar.gz
if [ ! -f "$B" ]; then
  [ -e "$kit" ] || git clone -q https://github.com/mrcagney/gtfsr_kit "$kit"
  rm -rf "$work/unpacked" && mkdir -p "$work/unpacked/auckland-tripupdates_2016-05-20"
  git -C "$kit" archive "$commit" data/auckland_gtfsr_trip_updates \
    | tar -x -C "$work/unpacked" --wildcards '*/20160520*.json'
  mv "$work/unpacked/data/auckland_gtfsr_trip_updates/"*.json "$work/unpacked/auckland-tripupdates_2016-05-20/"
  tar -czf "$B" -C "$work/unpacked" auckland-tripupdates_2016-05-20
  rm -rf "$work/unpacked"
fi
fleet=(dotnet artifacts/bin/Fleet.Dashboard/release/fleet.dll)
# Runs fleet with its progress in a log; on failure the log's end is shown.
run() {
  local log=$work/$1.log; shift
  "${fleet[@]}" "$@" 2>"$log" || { echo "fleet $1 failed (log: $log):" >&2; tail -5 "$log" >&2; exit 1; }
}

# MAE by bucket, the share of the delay carried forward's MAE the model saves, and the model against the best baseline.
report() {
  python3 - "$1" "$2" <<'PY'
import json, sys
r = json.load(open(sys.argv[2])); p = r["predictors"]
print(f"{sys.argv[1]}: tripsScored {r['tripsScored']:,}, tripsSkipped {r['tripsSkipped']:,}")
for b in ("0-1", "1-3", "3-5", "5-10", "10-15", "15-30"):
    best = min(p[k][b]["mae"] for k in p if k != "model")
    m = p["model"][b]["mae"]
    print(f"  {b:>5} min  " + "  ".join(f"{k} {p[k][b]['mae']:.1f}" for k in p)
          + f"  (n {p['model'][b]['n']:,}; model {1 - m / p['delay'][b]['mae']:.1%} below delay, {m / best - 1:+.1%} against the best baseline)")
PY
}

for trainer in gbdt lightgbm fasttree; do
  run "3routes-$trainer-train" train --gtfs "$G" --gtfs-rt "$A" --validate-on-latest --trainer $trainer --out "$work/3routes-$trainer.bin" >/dev/null
  run "3routes-$trainer-evaluate" evaluate --gtfs "$G" --gtfs-rt "$B" --model "$work/3routes-$trainer.bin" --json > "$work/3routes-$trainer.json"
  report "3-route subset, $trainer, trained on 05-19, scored on 05-20" "$work/3routes-$trainer.json"
done
run network-train train --timetable-from "$A" --timezone Pacific/Auckland --gtfs-rt "$A" --validate-on-latest --out "$work/network.bin" >/dev/null
run network-evaluate evaluate --timetable-from "$A" --timezone Pacific/Auckland --gtfs-rt "$B" --model "$work/network.bin" --json > "$work/network.json"
report "whole network (timetable inferred from 05-19), gbdt, trained on 05-19, scored on 05-20" "$work/network.json"
