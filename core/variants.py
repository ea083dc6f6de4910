"""The FCN variants, coarse to fine: one list for the core, the app and the CLI (torch-free).

``32s`` is the stride-32 output (score_fr upsampled 32x), ``16s`` fuses the pool4 skip and
``8s`` the pool3 skip as well (Long, Shelhamer & Darrell, section 4.2).
"""

from __future__ import annotations

VARIANTS: tuple[str, ...] = ("32s", "16s", "8s")
"""The output variants of one FCN, coarse to fine."""

VARIANT_STRIDES: dict[str, int] = {"32s": 32, "16s": 16, "8s": 8}
"""The stride of each variant's finest fused score map."""
