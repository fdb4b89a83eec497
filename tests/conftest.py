import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "tests"):  # the project, and the helpers every test folder shares (tests/fakes.py)
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
