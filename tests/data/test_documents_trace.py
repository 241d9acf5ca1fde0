"""The editing trace of generated documents (``tamper_noise``): extra noise inside the
tampered boxes only, nothing else changes; off by default."""

import numpy as np
import pytest
import torch

from audit.core.errors import InvalidParameterError
from audit.data.generated.documents import _generate, documents


def _fresh(tamper_noise):
    return _generate.__wrapped__(32, 16, 0, 0.8, 4, tamper_noise)


def test_trace_only_inside_tampered_boxes_and_off_by_default():
    plain, traced = _fresh(0.0), _fresh(8.0)
    assert torch.equal(_generate.__wrapped__(32, 16, 0, 0.8, 4).images, plain.images)
    for name in ("labels", "psi_masks", "groups"):
        assert torch.equal(getattr(plain, name), getattr(traced, name)), name
    inside = plain.labels.bool().unsqueeze(1).expand_as(plain.images)
    diff = (traced.images - plain.images).abs()
    assert float(diff[~inside].max()) == 0.0  # no pixel outside the tamper masks changes
    changed = diff[inside]
    assert float((changed > 0).float().mean()) > 0.5
    # the added noise has about the asked standard deviation (clipped at 0 and 255)
    residual = (traced.images - plain.images)[inside].numpy() * 255
    assert 4.0 < float(np.std(residual)) < 9.0


def test_trace_is_deterministic_and_checked():
    assert torch.equal(_fresh(8.0).images, _fresh(8.0).images)
    assert documents(size=32, num_items=8, tamper_noise=8) is documents(size=32, num_items=8, tamper_noise=8.0)
    with pytest.raises(InvalidParameterError, match="'tamper_noise'.*-1"):
        documents(tamper_noise=-1)
