"""Long fuzz run of the core's readers: the property tests of tests/core/test_fuzz_inputs.py
with many more cases.

    python benchmarks/fuzz.py --cases 20000
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def main() -> int:
    """Run the fuzz properties with ``--cases`` examples each; exit status of pytest."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--cases", type=int, default=5000, help="examples per property")
    args = p.parse_args()
    os.environ["FCN_FUZZ_CASES"] = str(args.cases)
    root = Path(__file__).resolve().parents[1]
    import pytest

    tests = str(root / "tests" / "core" / "test_fuzz_inputs.py")
    return pytest.main(["-q", "-p", "no:cacheprovider", tests])


if __name__ == "__main__":
    sys.exit(main())
