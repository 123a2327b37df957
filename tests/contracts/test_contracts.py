"""The model Protocols (runtime/contracts.py): the ONNX sessions implement them, a stand-in
can take their place through ``with_model(s)``, and an object that does not is refused."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import CachedModel

from powerseg import Diarizer, Embedder, Segmenter
from powerseg.errors import OptionError
from powerseg.runtime.contracts import EmbeddingModel, WindowModel


def test_the_onnx_sessions_implement_the_protocols():
    pair, full = Segmenter(providers="cpu"), Segmenter(providers="cpu", shared_front=False)
    assert pair.shared_front and not full.shared_front
    assert isinstance(pair.model, WindowModel) and isinstance(full.model, WindowModel)
    assert isinstance(Embedder(providers="cpu").model, EmbeddingModel)


def test_a_stand_in_takes_the_model_s_place(sample):
    """A wrapper of the real model (the tests' cache) gives the real scores."""
    real = Segmenter(providers="cpu")
    stand_in = Segmenter.with_model(CachedModel(real.model), real.options)
    assert stand_in.options == real.options and stand_in.shared_front
    a, b = real(sample), stand_in(sample)
    np.testing.assert_array_equal(a.speech, b.speech)
    np.testing.assert_array_equal(a.overlap, b.overlap)


def test_a_diarizer_on_model_objects_gives_the_same_turns(sample, sample_diarization):
    models = Diarizer(providers="cpu")
    again = Diarizer.with_models(models.segmenter.model, models.embedder.model, models.options)
    assert again(sample).to_rttm("sample") == sample_diarization.to_rttm("sample")


class Half:
    """Has a spec and a provider, and nothing else a segmentation model needs."""

    spec, provider = None, "nowhere"


@pytest.mark.parametrize("build, contract, lacks", [
    (lambda: Segmenter.with_model(Half()), "WindowModel",
     "workers, front, windows, accepts_step, infer_async, infer_lone"),
    (lambda: Embedder.with_model(Half()), "EmbeddingModel", "__call__, map"),
])
def test_an_object_without_the_contract_is_refused(build, contract, lacks):
    with pytest.raises(OptionError, match=f"Half is not a {contract} \\(it lacks {lacks};"):
        build()
