"""Inference: segment RGB images with an FCN (:class:`Segmenter`), streamed exactly in bands,
on the device that suits them (:mod:`core.inference.devices`); a :class:`Prediction` keeps the
fused score maps and computes any region's probabilities on demand."""

from core.inference.results import Prediction, Region, VariantOutput
from core.inference.segmenter import Segmenter, as_rgb

__all__ = ["Prediction", "Region", "Segmenter", "VariantOutput", "as_rgb"]
