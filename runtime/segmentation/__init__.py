"""Segmentation: the window model, its shared front-end, sliding windows streamed and decoded
from powerset classes to per-speaker scores, and the Segmenter that runs them."""
