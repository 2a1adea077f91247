"""HashingEncoder: the encoder contract, cross-process determinism and lexical similarity."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from lumenrec.encoders import HashingEncoder
from lumenrec.errors import ConfigError


@pytest.mark.parametrize(
    "encoder",
    [
        HashingEncoder(),
        HashingEncoder(dim=32, ngram_range=(1, 1), sublinear_tf=False),
        HashingEncoder(dim=512, char_ngram_range=(3, 5), lowercase=False, seed=7),
    ],
    ids=repr,
)
def test_contract(encoder, encoder_contract):
    encoder_contract(encoder, exact=True)


def test_fingerprint_names_every_option():
    base = HashingEncoder()
    assert base.fingerprint == "hashing:v1:d256:w1-2:c0-0:lower:sub:s0"
    variants = [
        HashingEncoder(dim=128),
        HashingEncoder(ngram_range=(1, 1)),
        HashingEncoder(char_ngram_range=(3, 4)),
        HashingEncoder(lowercase=False),
        HashingEncoder(sublinear_tf=False),
        HashingEncoder(seed=1),
    ]
    prints = {v.fingerprint for v in variants} | {base.fingerprint}
    assert len(prints) == len(variants) + 1
    assert HashingEncoder().fingerprint == base.fingerprint


def test_same_vectors_in_another_process():
    """No salted hash(): a fresh interpreter (new PYTHONHASHSEED) gives identical bytes."""
    texts = ["hiking boots", "cast iron skillet", "jazz vinyl"]
    here = HashingEncoder(dim=64, char_ngram_range=(2, 3)).encode(texts)
    code = (
        "import sys, numpy as np\n"
        "from lumenrec.encoders import HashingEncoder\n"
        "v = HashingEncoder(dim=64, char_ngram_range=(2, 3)).encode(sys.argv[1:])\n"
        "sys.stdout.write(v.tobytes().hex())\n"
    )
    env = {"PYTHONHASHSEED": "12345", "PATH": ""}
    out = subprocess.run(
        [sys.executable, "-c", code, *texts], capture_output=True, text=True, check=True, env=env
    ).stdout
    there = np.frombuffer(bytes.fromhex(out), dtype=np.float32).reshape(here.shape)
    np.testing.assert_array_equal(here, there)


def test_shared_words_make_texts_similar():
    enc = HashingEncoder(dim=1024)
    q, hike, cook = enc.encode(
        ["hiking boots for the trail", "trail running boots", "cast iron skillet recipe"]
    )
    assert q @ hike > q @ cook
    assert q @ hike > 0.2


def test_case_and_char_ngrams():
    lower = HashingEncoder(dim=256)
    a, b = lower.encode(["Hiking Boots", "hiking boots"])
    np.testing.assert_array_equal(a, b)
    cased = HashingEncoder(dim=256, lowercase=False)
    a, b = cased.encode(["Hiking Boots", "hiking boots"])
    assert not np.allclose(a, b)
    chars = HashingEncoder(dim=2048, ngram_range=(1, 1), char_ngram_range=(3, 3))
    typo, right, other = chars.encode(["moisturiser", "moisturizer", "telescope"])
    assert typo @ right > typo @ other


def test_features_and_empty_text():
    enc = HashingEncoder(char_ngram_range=(3, 3))
    assert enc.features("Red lipstick") == [
        "w:red",
        "w:lipstick",
        "w:red lipstick",
        "c:<re",
        "c:red",
        "c:ed>",
        "c:<li",
        "c:lip",
        "c:ips",
        "c:pst",
        "c:sti",
        "c:tic",
        "c:ick",
        "c:ck>",
    ]
    empty, punct = enc.encode(["", "!!! ..."])
    np.testing.assert_array_equal(empty, punct)  # both have no words: the fixed unit vector
    assert np.linalg.norm(empty) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"dim": 0},
        {"dim": 2.5},
        {"dim": True},
        {"ngram_range": (2, 1)},
        {"ngram_range": (0, 1)},
        {"char_ngram_range": (3,)},
        {"seed": -1},
    ],
)
def test_bad_options(kwargs):
    with pytest.raises(ConfigError):
        HashingEncoder(**kwargs)


def test_progress_does_not_change_result():
    enc = HashingEncoder(dim=32)
    texts = [f"item {i}" for i in range(10)]
    np.testing.assert_array_equal(
        enc.encode(texts, batch_size=3, progress=False), enc.encode(texts, batch_size=100)
    )
