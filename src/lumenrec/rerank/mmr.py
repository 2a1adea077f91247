"""Maximal marginal relevance (Carbonell & Goldstein, SIGIR 1998) over item embeddings.

Greedy: position by position, take the candidate maximising::

    (1 - λ) · rel(i) - λ · max_{j already chosen} sim(i, j)

with ``rel`` the candidate scores min-max normalised over the candidate set and ``sim`` the
cosine similarity of the LM item embeddings (``ItemFeatures.embeddings``). Without
embeddings the category vectors are used (cosine of the multi-hot rows, i.e. genre
overlap), and the result says so in ``notes``; with neither, the input is returned
unchanged with a note. Ties go to the candidate that came first. λ = 0 returns the input
order exactly; λ = 1 ignores relevance after the first pick (the first pick is then the
top candidate, since nothing has been chosen to be similar to).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from lumenrec.rerank._util import assemble, check_k, check_lambda, minmax, pick, unchanged
from lumenrec.rerank.base import Candidates, ItemFeatures, Reranked

__all__ = ["MMR", "candidate_vectors"]


def candidate_vectors(
    items: NDArray[np.int32], features: ItemFeatures
) -> tuple[NDArray[np.float64] | None, str]:
    """Unit vectors of ``items`` for cosine similarity, and where they came from.

    Returns
    -------
    vectors : ndarray of shape (n, d), float64, or None
        L2-normalised rows (zero rows stay zero); None when the features have neither
        embeddings nor categories.
    source : {"embeddings", "categories", "none"}
    """
    if features.embeddings is not None:
        vec = features.embeddings[items].astype(np.float64)
        source = "embeddings"
    elif features.categories is not None:
        vec = features.categories[items].toarray().astype(np.float64)
        source = "categories"
    else:
        return None, "none"
    norms = np.linalg.norm(vec, axis=1, keepdims=True)
    return np.divide(vec, norms, out=np.zeros_like(vec), where=norms > 0), source


class MMR:
    """Diversify the top ``k`` by maximal marginal relevance.

    Parameters
    ----------
    lam : float in [0, 1], default 0.3
        Weight on diversity (0 = input order, 1 = only diversity).

    Examples
    --------
    >>> import numpy as np
    >>> from lumenrec.rerank import MMR, Candidates, ItemFeatures
    >>> emb = np.array([[1, 0], [1, 0], [0, 1]], dtype=np.float32)
    >>> feats = ItemFeatures(popularity=np.ones(3, np.float32), embeddings=emb)
    >>> cands = Candidates(np.array([0, 1, 2]), np.array([3.0, 2.0, 1.0]))
    >>> MMR(lam=0.7).rerank(cands, 2, feats).items.tolist()
    [0, 2, 1]
    """

    name = "mmr"

    def __init__(self, lam: float = 0.3) -> None:
        self.lam = check_lambda(lam, "mmr λ")

    def __repr__(self) -> str:
        return f"MMR(lam={self.lam})"

    def rerank(self, candidates: Candidates, k: int, features: ItemFeatures) -> Reranked:
        """Reorder ``candidates`` so the first ``min(k, n)`` are the MMR picks.

        Parameters
        ----------
        candidates : Candidates
        k : int
        features : ItemFeatures
            ``embeddings`` (preferred) or ``categories``.

        Returns
        -------
        Reranked
        """
        k = check_k(k)
        n = len(candidates)
        if self.lam == 0.0 or n <= 1:
            return unchanged(candidates)
        vectors, source = candidate_vectors(candidates.items, features)
        if vectors is None:
            return unchanged(candidates, ("no embeddings or categories: order kept",))
        notes = ()
        if source == "categories":
            notes = ("no item embeddings: diversity from category vectors (cosine)",)
        rel = minmax(candidates.scores)
        lam = self.lam
        available = np.ones(n, dtype=bool)
        max_sim = np.zeros(n)
        chosen: list[int] = []
        for step in range(min(k, n)):
            score = (1.0 - lam) * rel - lam * max_sim if step else rel
            best = pick(score, available)
            chosen.append(best)
            available[best] = False
            np.maximum(max_sim, vectors @ vectors[best], out=max_sim)
        return assemble(candidates, chosen, True, notes)
