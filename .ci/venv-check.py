"""Exit 0 when this Python has every package of .ci/python-requirements.txt at its pinned version;
else print one line per missing or different package and exit 1. Imports nothing heavy (fast):
.ci/run's venv phase and `npm test`'s prerequisite check both ask it."""
import os
import sys
from importlib.metadata import PackageNotFoundError, version

requirements = os.path.join(os.path.dirname(os.path.abspath(__file__)), "python-requirements.txt")
wrong = []
for line in open(requirements, encoding="utf-8"):
    line = line.split("#")[0].strip()
    if not line:
        continue
    name, want = (s.strip() for s in line.split("=="))
    try:
        have = version(name)
    except PackageNotFoundError:
        wrong.append(f"{name} is not installed (want {want})")
        continue
    if have.split("+")[0] != want:
        wrong.append(f"{name} {have} (want {want})")
print("\n".join(wrong))
sys.exit(1 if wrong else 0)
