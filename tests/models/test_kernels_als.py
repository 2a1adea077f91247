"""The numba ALS conjugate-gradient half-step against its exact NumPy reference."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from lumenrec.models._kernels.als_cg import (
    als_loss,
    gram,
    least_squares_cg,
    least_squares_exact,
    row_chunks,
)


def _problem(seed: int, n_rows: int = 60, n_cols: int = 45, f: int = 7, negatives: bool = False):
    rng = np.random.default_rng(seed)
    mat = sp.random(n_rows, n_cols, density=0.15, random_state=rng, format="csr", dtype=np.float64)
    mat.data = rng.integers(1, 6, size=mat.nnz).astype(np.float64)
    if negatives:
        mat.data[rng.random(mat.nnz) < 0.2] *= -1
    mat = mat.tolil()
    mat[3, :] = 0  # an empty row
    mat = sp.csr_matrix(mat)
    mat.eliminate_zeros()
    mat.sort_indices()
    y = rng.normal(scale=0.5, size=(n_cols, f))
    x = rng.normal(scale=0.1, size=(n_rows, f))
    return mat, x, y


def _dense_solve(mat: sp.csr_matrix, y: np.ndarray, reg: float, alpha: float) -> np.ndarray:
    """Textbook Hu et al. normal equations with the dense C_u diagonal."""
    dense = mat.toarray()
    out = np.zeros((dense.shape[0], y.shape[1]))
    for u, row in enumerate(dense):
        if not row.any():
            continue
        c = 1.0 + alpha * np.abs(row)
        p = (row > 0).astype(float)
        a = y.T @ (c[:, None] * y) + reg * np.eye(y.shape[1])
        out[u] = np.linalg.solve(a, y.T @ (c * p))
    return out


@pytest.mark.parametrize("negatives", [False, True])
def test_reference_matches_textbook_equations(negatives):
    mat, _, y = _problem(0, negatives=negatives)
    ref = least_squares_exact(mat.indptr, mat.indices, mat.data, y, 0.3, 2.0)
    np.testing.assert_allclose(ref, _dense_solve(mat, y, 0.3, 2.0), rtol=1e-10, atol=1e-12)
    assert not ref[3].any()


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("negatives", [False, True])
def test_cg_with_enough_steps_equals_exact_float64(seed, negatives):
    mat, x, y = _problem(seed, negatives=negatives)
    ref = least_squares_exact(mat.indptr, mat.indices, mat.data, y, 0.1, 1.5)
    x = np.ascontiguousarray(x)
    least_squares_cg(mat.indptr, mat.indices, mat.data, x, y, 0.1, 1.5, cg_steps=3 * y.shape[1])
    np.testing.assert_allclose(x, ref, rtol=1e-8, atol=1e-10)
    assert not x[3].any()  # empty rows are zeroed, as in implicit


def test_cg_float32_int64_indices_and_chunking():
    mat, x, y = _problem(5, n_rows=200, f=16)
    ref = least_squares_exact(mat.indptr, mat.indices, mat.data, y, 0.5, 1.0)
    indptr, indices = mat.indptr.astype(np.int64), mat.indices.astype(np.int64)
    for n_chunks in (1, 3, 64):
        x32 = x.astype(np.float32)
        least_squares_cg(
            indptr,
            indices,
            mat.data.astype(np.float32),
            x32,
            y.astype(np.float32),
            0.5,
            1.0,
            40,
            n_chunks,
        )
        np.testing.assert_allclose(x32, ref, rtol=1e-3, atol=1e-4)


def test_warm_started_few_steps_converge_and_never_increase_loss():
    mat, x, y = _problem(7, f=10)
    ref = least_squares_exact(mat.indptr, mat.indices, mat.data, y, 0.2, 3.0)
    x = np.ascontiguousarray(x)
    losses = [als_loss(mat.indptr, mat.indices, mat.data, x, y, 0.2, 3.0)]
    for _ in range(60):  # restarted CG: a few steps per call, warm-started
        least_squares_cg(mat.indptr, mat.indices, mat.data, x, y, 0.2, 3.0, cg_steps=3)
        losses.append(als_loss(mat.indptr, mat.indices, mat.data, x, y, 0.2, 3.0))
    assert all(b <= a + 1e-9 for a, b in zip(losses, losses[1:], strict=False))
    np.testing.assert_allclose(x, ref, rtol=1e-6, atol=1e-7)


def test_loss_matches_dense_objective():
    mat, x, y = _problem(3, negatives=True)
    dense = mat.toarray()
    c = 1.0 + 0.7 * np.abs(dense)
    p = (dense > 0).astype(float)
    expected = np.sum(c * (p - x @ y.T) ** 2) + 0.4 * (np.sum(x**2) + np.sum(y**2))
    got = als_loss(mat.indptr, mat.indices, mat.data, x, y, 0.4, 0.7, block=17)
    assert got == pytest.approx(expected, rel=1e-10)


def test_gram_and_row_chunks():
    y = np.random.default_rng(0).normal(size=(30, 4)).astype(np.float32)
    g = gram(y, 2.0)
    assert g.dtype == np.float32 and g.flags.c_contiguous
    np.testing.assert_allclose(g, y.T @ y + 2 * np.eye(4), rtol=1e-5)
    indptr = np.concatenate(([0], np.cumsum([0, 500, 1, 1, 1, 1, 300, 2, 2])))
    bounds = row_chunks(indptr, 8, 4)
    assert bounds[0] == 0 and bounds[-1] == len(indptr) - 1 and np.all(np.diff(bounds) >= 0)
    assert len(bounds) == 5


def test_rejects_mismatched_dtypes():
    mat, x, y = _problem(0)
    with pytest.raises(ValueError, match="one dtype"):
        least_squares_cg(mat.indptr, mat.indices, mat.data, x.astype(np.float32), y, 0.1, 1.0)
