"""Powerset classes -> per-speaker activations, from the class table in the model's metadata."""

from __future__ import annotations

import numpy as np


def to_multilabel(logprobs: np.ndarray, mapping: np.ndarray, soft: bool = False) -> np.ndarray:
    """(..., classes) log-probabilities -> (..., speakers) activations.

    Hard (pyannote's default): the most likely class, one-hot, mapped to its speakers (0/1).
    Soft: class probabilities mapped to speakers, i.e. P(speaker active).
    """
    if soft:
        return np.exp(logprobs, dtype=np.float32) @ mapping
    return mapping[np.argmax(logprobs, axis=-1)]


def speech_score(activations: np.ndarray) -> np.ndarray:
    """(..., speakers) -> (...): someone speaks (max over speakers), as pyannote's VAD hook."""
    return activations.max(axis=-1)


def overlap_score(activations: np.ndarray) -> np.ndarray:
    """(..., speakers) -> (...): at least two speak (second largest), as pyannote's OSD hook."""
    return np.partition(activations, -2, axis=-1)[..., -2]


def active_speakers(activations: np.ndarray) -> np.ndarray:
    """(..., speakers) -> (...): how many speakers are active."""
    return activations.sum(axis=-1)
