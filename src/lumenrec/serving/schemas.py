"""Request and response models of the HTTP API (external string ids only, bounded sizes)."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from lumenrec.serving.registry import VERSION_PATTERN
from lumenrec.serving.store import EVENT_TYPES

__all__ = [
    "K_MAX",
    "EventIn",
    "FeedbackBatchIn",
    "FeedbackOut",
    "ItemId",
    "ItemIn",
    "ItemsIn",
    "ItemsOut",
    "KParam",
    "RecommendOut",
    "ReloadIn",
    "SimilarOut",
    "UserId",
    "UserIn",
    "UsersIn",
]

K_MAX = 1000
ID_MAX = 256
TEXT_MAX = 10_000
#: How far in the future an event timestamp may lie (clock skew allowance), in seconds.
FUTURE_SLACK_S = 86_400
# (error type, message template) of the custom validation errors
_ID_FORMAT = ("id_format", "{field} must be 1–256 printable characters")
_K_RANGE = ("k_range", "k must be an integer in 1–{k_max} (got {got})")
_VERSION_FORMAT = ("version_format", "version must be 1–64 characters from A-Z a-z 0-9 . _ -")
_TIMESTAMP_RANGE = ("timestamp_range", "timestamp must be Unix seconds between 0 and now + 1 day")
_ITEM_TEXT = ("item_text", "an item needs title, description, text or attributes")


def _id_checker(field: str) -> Any:
    def check(value: str) -> str:
        if not 1 <= len(value) <= ID_MAX or not value.isprintable() or "\ufffd" in value:
            raise PydanticCustomError(*_ID_FORMAT, {"field": field})
        return value

    return AfterValidator(check)


UserId = Annotated[str, _id_checker("user_id")]
ItemId = Annotated[str, _id_checker("item_id")]
EventId = Annotated[str, _id_checker("event_id")]
RequestId = Annotated[str, _id_checker("request_id")]


def _parse_k(value: Any) -> int:
    text = str(value).strip()
    ok = not isinstance(value, bool) and (isinstance(value, int) or text.lstrip("-").isdigit())
    k = int(text) if ok else None
    if k is None or not 1 <= k <= K_MAX:
        raise PydanticCustomError(*_K_RANGE, {"k_max": K_MAX, "got": text[:20]})
    return k


KParam = Annotated[int, BeforeValidator(_parse_k)]


def _check_version(value: str) -> str:
    if not VERSION_PATTERN.match(value) or value.strip(".") == "":
        raise PydanticCustomError(*_VERSION_FORMAT)
    return value


Version = Annotated[str, AfterValidator(_check_version)]
AttrValue = str | int | float | bool | None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EventIn(_Strict):
    """One feedback event."""

    user_id: UserId
    item_id: ItemId
    type: Literal[EVENT_TYPES] = "view"  # type: ignore[valid-type]
    value: float = Field(1.0, allow_inf_nan=False, description="Weight or rating; finite.")
    timestamp: float = Field(
        default_factory=time.time,
        allow_inf_nan=False,
        description="Unix seconds; default: when received.",
    )
    event_id: EventId | None = Field(None, description="Idempotency key: a repeat is stored once.")
    request_id: RequestId | None = Field(
        None,
        description="The request_id of the /recommend answer this feedback is about: joins "
        "the event to its impression (propensity, position) and updates the bandit.",
    )

    @field_validator("timestamp")
    @classmethod
    def _check_time(cls, value: float) -> float:
        if value < 0 or value > time.time() + FUTURE_SLACK_S:
            raise PydanticCustomError(*_TIMESTAMP_RANGE)
        return value


class FeedbackBatchIn(_Strict):
    events: list[EventIn] = Field(min_length=1, description="At most 10,000 events.")


class FeedbackOut(BaseModel):
    accepted: int
    duplicates: int
    duplicate: bool = Field(description="True when every event was already stored.")


class ItemIn(_Strict):
    """A new or updated item; its text makes it recommendable at once."""

    item_id: ItemId
    title: str | None = Field(None, max_length=TEXT_MAX)
    description: str | None = Field(None, max_length=TEXT_MAX)
    text: str | None = Field(None, max_length=TEXT_MAX, description="Embedded as is if given.")
    attributes: dict[str, AttrValue] = Field(default_factory=dict, max_length=100)

    @model_validator(mode="after")
    def _has_text(self) -> ItemIn:
        if not (self.title or self.description or self.text or self.attributes):
            raise PydanticCustomError(*_ITEM_TEXT)
        return self


class ItemsIn(_Strict):
    items: list[ItemIn] = Field(min_length=1, description="At most 10,000 items.")


class ItemsOut(BaseModel):
    added: list[str]
    updated: list[str]
    pending: list[str] = Field(
        default_factory=list, description="Stored, recommendable after the next retrain."
    )
    model_version: str | None


class UserIn(_Strict):
    user_id: UserId
    text: str | None = Field(None, max_length=TEXT_MAX)
    attributes: dict[str, AttrValue] = Field(default_factory=dict, max_length=100)


class UsersIn(_Strict):
    users: list[UserIn] = Field(min_length=1, description="At most 10,000 users.")


class EvidenceOut(BaseModel):
    kind: Literal["item", "attribute", "profile"]
    label: str = Field(description="History item title, or the item's word/attribute.")
    contribution: float
    share: float = Field(description="Share of the positive contributions (they sum to 1).")
    item_id: str | None = None


class ReasonOut(BaseModel):
    kind: Literal["history", "text", "popular", "exploration", "rule"]
    route: str
    method: str = Field(
        description="exact | als | occlusion | text-match | popularity | rule | setting"
    )
    sentence: str
    evidence: list[EvidenceOut]
    explained_score: float | None = Field(
        None, description="What the contributions sum to (exact methods)."
    )
    notes: list[str] = Field(default_factory=list)


class RecItem(BaseModel):
    item_id: str
    score: float
    rank: int
    route: Literal["cf", "text", "popular", "rule", "exploration"]
    reason: ReasonOut | None = Field(None, description="Why the item is here.")
    propensity: float | None = Field(
        None, description="P(shown at this position) under the exploration policy."
    )
    exploratory: bool | None = Field(None, description="Not the greedy choice for this slot.")


class RerankOut(BaseModel):
    stages: list[str]
    feasible: bool = Field(description="False: a constraint could not be met; best list given.")
    notes: list[str]


class RecommendOut(BaseModel):
    user_id: str
    items: list[RecItem]
    model_version: str
    fallback: Literal["text", "popular"] | None = None
    fold_in: bool = False
    rerank: RerankOut | None = None
    personalised: bool = True
    request_id: str | None = Field(
        None, description="Send it back with feedback to join the impression (explored lists)."
    )
    policy: str | None = None
    arm: str | None = Field(None, description="explicit | default | split:<policy>")


class ExplainOut(BaseModel):
    user_id: str
    item_id: str
    rank: int
    score: float
    route: str
    reason: ReasonOut
    model_version: str


class NotInterestedIn(_Strict):
    """ "Not interested" in an item, a category or a brand (``undo`` withdraws it)."""

    kind: Literal["item", "category", "brand"] = "item"
    value: str = Field(min_length=1, max_length=256, description="Item id, category or brand.")
    undo: bool = False


class SettingsIn(_Strict):
    personalised: bool = Field(description="False: non-personalised (popular) lists.")


class SimilarOut(BaseModel):
    item_id: str
    items: list[RecItem]
    model_version: str


class ReloadIn(_Strict):
    version: Version | None = Field(None, description="Default: the registry's current version.")


class ReloadOut(BaseModel):
    model_version: str
    previous: str | None


class RetrainOut(BaseModel):
    model_version: str
    previous: str | None
    n_users: int
    n_items: int
    seconds: float


class ReadyOut(BaseModel):
    ready: bool
    model_version: str | None
    last_reload_error: dict[str, Any] | None
    blas_threads: int | None
    retrieval: Literal["exact", "ann"] | None = None
