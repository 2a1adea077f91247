"""The encoder contract shared by every TextEncoder test module (used as a fixture)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from lumenrec.encoders import TextEncoder
from lumenrec.errors import ConfigError, DataError

CONTRACT_TEXTS = [
    "Waterproof hiking boots for rocky mountain trails",
    "Cast iron skillet for searing steak",
    "",
    "jazz",
    "A very long description " * 20,
    "Ünïcödé café crème brûlée — 東京",
    "Cast iron skillet for searing steak",
]


def check_encoder_contract(encoder: TextEncoder, *, exact: bool = True, atol: float = 1e-5) -> None:
    """Shape, dtype, unit norms, determinism, order/batch independence, empty and bad input."""
    assert isinstance(encoder, TextEncoder)
    assert isinstance(encoder.fingerprint, str) and encoder.fingerprint
    assert isinstance(encoder.dim, int) and encoder.dim > 0
    texts = list(CONTRACT_TEXTS)
    vecs = encoder.encode(texts, batch_size=3)
    assert vecs.shape == (len(texts), encoder.dim)
    assert vecs.dtype == np.float32
    assert vecs.flags.c_contiguous
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    again = encoder.encode(texts, batch_size=3)
    if exact:
        np.testing.assert_array_equal(vecs, again)
    else:
        np.testing.assert_allclose(vecs, again, atol=atol)
    # identical texts give identical rows; order and batch size do not matter
    np.testing.assert_allclose(vecs[1], vecs[6], atol=atol)
    reversed_vecs = encoder.encode(texts[::-1], batch_size=64)
    np.testing.assert_allclose(reversed_vecs[::-1], vecs, atol=atol)
    single = encoder.encode(texts[:2], batch_size=1)
    np.testing.assert_allclose(single, vecs[:2], atol=atol)
    # empty input
    empty = encoder.encode([])
    assert empty.shape == (0, encoder.dim) and empty.dtype == np.float32
    # bad input names the position
    with pytest.raises(DataError, match=r"texts\[1\]"):
        encoder.encode(["ok", 3.5, "fine"])
    with pytest.raises(DataError, match=r"texts\[0\]"):
        encoder.encode([None])
    with pytest.raises(DataError, match="single str"):
        encoder.encode("not a list")
    with pytest.raises(ConfigError, match="batch_size"):
        encoder.encode(["x"], batch_size=0)


@pytest.fixture
def encoder_contract() -> Callable[..., None]:
    """The contract check as a callable: ``encoder_contract(encoder, exact=..., atol=...)``."""
    return check_encoder_contract
