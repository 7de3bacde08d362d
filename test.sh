#!/usr/bin/env bash
# Installs what the tests need, builds, runs every test and ends with one line:
#   tests: N passed, N failed, N skipped
# Exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")"
root=$(pwd)

log() { printf '[test.sh] %s\n' "$*" >&2; }

# --- system packages -------------------------------------------------------------------------------
need=()
[ -x /usr/sbin/mosquitto ] || command -v mosquitto >/dev/null 2>&1 || need+=(mosquitto)
command -v mosquitto_sub >/dev/null 2>&1 || need+=(mosquitto-clients)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
# The page's browser test (Selenium drives Debian's Chromium through its chromedriver).
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
# The Dashboard build runs npm ci + vite build for the page.
command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
if [ "${#need[@]}" -gt 0 ]; then
  log "installing: ${need[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq >/dev/null && \
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
    || { log "apt-get install failed"; echo "tests: 0 passed, 1 failed, 0 skipped"; exit 1; }
fi

# --- build ------------------------------------------------------------------------------------------
log "building"
if ! dotnet build Fleet.sln -nologo -v:q -clp:ErrorsOnly; then
  echo "tests: 0 passed, 1 failed, 0 skipped"
  exit 1
fi

# --- test -------------------------------------------------------------------------------------------
results="$root/artifacts/test-results"
rm -rf "$results"
mkdir -p "$results"
log "testing"
dotnet test Fleet.sln --no-build -nologo -v:q \
  --logger "trx" --results-directory "$results" \
  --blame-hang --blame-hang-timeout 8m
rc=$?

passed=0; failed=0; skipped=0
shopt -s nullglob
trx=("$results"/*.trx)
for f in "${trx[@]}"; do
  counters=$(grep -o '<Counters [^>]*>' "$f" | head -1)
  get() { printf '%s' "$counters" | grep -o " $1=\"[0-9]*\"" | grep -o '[0-9]*'; }
  passed=$((passed + $(get passed)))
  failed=$((failed + $(get failed) + $(get error) + $(get timeout) + $(get aborted)))
  # The TRX counters leave skipped tests out of notExecuted: a skipped test is counted in total but not executed.
  skipped=$((skipped + $(get total) - $(get executed)))
done
if [ "${#trx[@]}" -eq 0 ] || { [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; }; then
  # The runner failed without a result file (crash, hang): count it as a failure.
  failed=$((failed + 1))
fi
if [ "$failed" -gt 0 ] && [ "${#trx[@]}" -gt 0 ] && command -v python3 >/dev/null; then
  # The quiet console run names a failing test but not why: print each failure's message from the result files.
  python3 - "${trx[@]}" <<'PY'
import sys, xml.etree.ElementTree as ET
ns = {"t": "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"}
for path in sys.argv[1:]:
    for r in ET.parse(path).getroot().iterfind(".//t:UnitTestResult", ns):
        if r.get("outcome") not in ("Failed", "Error", "Timeout", "Aborted"):
            continue
        message = r.findtext(".//t:ErrorInfo/t:Message", default="", namespaces=ns).strip()
        stack = r.findtext(".//t:ErrorInfo/t:StackTrace", default="", namespaces=ns).strip().splitlines()
        print(f"[test.sh] FAILED {r.get('testName')}\n{message[:4000]}\n" + "\n".join(stack[:12]), flush=True)
PY
fi
echo "tests: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
