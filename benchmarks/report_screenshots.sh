#!/usr/bin/env bash
# Screenshot review of the HTML report: the demo report (digits), a real CSV through the
# command line (breast cancer, K=2, unscaled; wine with an index column through the Python
# API) and, with --fashion, the 70,000-image Fashion-MNIST report. Look at the PNGs.
#   bash benchmarks/report_screenshots.sh [OUT_DIR] [--fashion]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/whyclust-screens}
PY=${PYTHON:-python}
export PYTHONPATH=$PWD/src
mkdir -p "$OUT"
shot() {  # shot HTML PNG HEIGHT
  chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --screenshot="$2" --window-size=1400,"$3" "file://$1" 2>/dev/null
}
$PY -m whyclust.cli demo --out "$OUT/demo" --quiet
shot "$OUT/demo/report.html" "$OUT/demo.png" 7000

$PY - "$OUT" <<'PY'
import sys
from sklearn.datasets import load_breast_cancer, load_wine
out = sys.argv[1]
load_breast_cancer(as_frame=True).frame.to_csv(f"{out}/cancer.csv", index=False)
wine = load_wine(as_frame=True).frame
wine.index = [f"wine_{i:03d}" for i in range(len(wine))]
from sklearn.cluster import KMeans
from whyclust.report import write_report
X = wine.drop(columns="target")
km = KMeans(3, n_init=10, random_state=0).fit(X)
write_report(km, X, f"{out}/wine.html", y=wine["target"], data_name="wine (unscaled)")
PY
$PY -m whyclust.cli fit "$OUT/cancer.csv" -k 2 --label-column target -o "$OUT/cancer.whyclust" -q
$PY -m whyclust.cli report "$OUT/cancer.whyclust" "$OUT/cancer.csv" --labels target \
  -o "$OUT/cancer.html" -q
shot "$OUT/cancer.html" "$OUT/cancer.png" 6000
shot "$OUT/wine.html" "$OUT/wine.png" 6000

if [[ "${2:-}" == "--fashion" ]]; then
  $PY benchmarks/bench_report.py --out "$OUT/fashion.html"
  shot "$OUT/fashion.html" "$OUT/fashion.png" 9000
fi
ls -la "$OUT"/*.png
