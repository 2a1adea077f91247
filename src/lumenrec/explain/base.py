"""What a reason is: its kind, the evidence behind it and one readable sentence.

A :class:`Reason` comes with every recommended item. Its ``evidence`` lists the 1–3 things
that contribute most (history items, or the item's words/attributes for a text match) with
their contribution and share of the score; ``method`` says how the contributions were
obtained (``exact`` decomposition, ``als`` fold-in decomposition, ``occlusion`` measurement,
``text-match`` in the language model's space, ``popularity``). The sentence comes from a
pluggable :class:`SentenceGenerator`; :class:`TemplateSentences` (the default) needs nothing
but the titles, so nothing is downloaded at run time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "REASON_KINDS",
    "Evidence",
    "Reason",
    "SentenceGenerator",
    "TemplateSentences",
]

#: Reason kinds: CF history, text similarity, popularity, an exploration pick, a business rule.
REASON_KINDS = ("history", "text", "popular", "exploration", "rule")


@dataclass(frozen=True, slots=True)
class Evidence:
    """One contributor to a score.

    Attributes
    ----------
    kind : {"item", "attribute", "profile"}
        A history item, a word/attribute of the recommended item (text match), or the
        profile text's part of a blended user vector.
    label : str
        The item's title, the attribute/word, or ``"your profile"``.
    contribution : float
        Additive term of the score (exact methods), the score drop when it is removed
        (occlusion), or a cosine similarity (text match).
    share : float
        ``contribution`` over the sum of the positive contributions (so the positive
        shares of all contributors sum to 1).
    item_id : str, optional
        External id of a history item.
    """

    kind: str
    label: str
    contribution: float
    share: float
    item_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "label": self.label,
            "contribution": round(float(self.contribution), 6),
            "share": round(float(self.share), 4),
        }
        if self.item_id is not None:
            out["item_id"] = self.item_id
        return out


@dataclass(frozen=True, slots=True)
class Reason:
    """Why one item is in a user's list.

    Attributes
    ----------
    kind : str
        One of :data:`REASON_KINDS`.
    route : str
        The path that ranked the item (``cf``, ``text``, ``popular``, ``exploration``, ``rule``).
    method : str
        How the evidence was computed (``exact``, ``als``, ``occlusion``, ``text-match``,
        ``popularity``, ``rule``, ``setting``).
    evidence : tuple of Evidence
        Top contributors, largest first (at most ``top`` of them).
    sentence : str
        One readable sentence (filled in by the sentence generator).
    explained_score : float or None
        The score the contributions add up to (exact methods), else None.
    notes : tuple of str
        Flags such as "reranked: diversity" or "contributions measured on the 50 most recent
        history items".
    """

    kind: str
    route: str
    method: str
    evidence: tuple[Evidence, ...] = ()
    sentence: str = ""
    explained_score: float | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "route": self.route,
            "method": self.method,
            "sentence": self.sentence,
            "evidence": [e.to_dict() for e in self.evidence],
        }
        if self.explained_score is not None:
            out["explained_score"] = round(float(self.explained_score), 6)
        if self.notes:
            out["notes"] = list(self.notes)
        return out


@runtime_checkable
class SentenceGenerator(Protocol):
    """Turns a reason (with labelled evidence) into one sentence for a person."""

    def __call__(self, reason: Reason, item_label: str) -> str: ...


def _join(labels: list[str]) -> str:
    if len(labels) <= 1:
        return "".join(labels)
    return ", ".join(labels[:-1]) + " and " + labels[-1]


@dataclass(frozen=True)
class TemplateSentences:
    """The default sentence generator: fixed templates over titles and attributes.

    Parameters
    ----------
    verb : str
        Past-tense verb for the user's history ("liked", "bought", "watched").
    max_labels : int
        Evidence labels named in a sentence (the rest stay in ``evidence``).
    """

    verb: str = "liked"
    max_labels: int = 2

    def __call__(self, reason: Reason, item_label: str) -> str:
        positive = [e for e in reason.evidence if e.contribution > 0][: self.max_labels]
        items = [e.label for e in positive if e.kind == "item"]
        words = [f"'{e.label}'" for e in positive if e.kind == "attribute"]
        if reason.kind == "history" and items:
            return f"Because you {self.verb} {_join(items)}"
        if reason.kind == "history":
            return "Matches your profile"
        if reason.kind == "text" and items:
            return f"Described like {_join(items)}, which you {self.verb}"
        if reason.kind == "text" and words:
            return f"Its {_join(words)} match what you {self.verb}"
        if reason.kind == "text":
            return "Its description matches your interests"
        if reason.kind == "popular" and reason.method == "setting":
            return "Popular with other users (personalisation is off in your settings)"
        if reason.kind == "popular":
            count = next((e.contribution for e in reason.evidence), 0.0)
            if count > 0:
                return f"Popular with other users ({int(count)} interactions)"
            return "Popular with other users"
        if reason.kind == "exploration":
            return "New to you: shown so we learn what you like"
        if reason.kind == "rule":
            return "Placed here by a business rule"
        return item_label
