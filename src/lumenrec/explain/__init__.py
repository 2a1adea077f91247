"""Reasons for recommendations: exact or measured history contributions, text matches in the
language model's space, popularity; and one readable sentence each (pluggable)."""

from lumenrec.explain.attribution import Attribution, history_attribution, occlusion_attribution
from lumenrec.explain.base import (
    REASON_KINDS,
    Evidence,
    Reason,
    SentenceGenerator,
    TemplateSentences,
)
from lumenrec.explain.batch import reasons_frame
from lumenrec.explain.explainer import Explainer
from lumenrec.explain.text_match import item_phrases, nearest_phrases

__all__ = [
    "REASON_KINDS",
    "Attribution",
    "Evidence",
    "Explainer",
    "Reason",
    "SentenceGenerator",
    "TemplateSentences",
    "history_attribution",
    "item_phrases",
    "nearest_phrases",
    "occlusion_attribution",
    "reasons_frame",
]
