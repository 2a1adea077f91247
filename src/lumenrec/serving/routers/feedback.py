"""``POST /feedback`` (one event) and ``POST /feedback/batch`` (up to 10,000 events)."""

from __future__ import annotations

from fastapi import APIRouter

from lumenrec.serving.routers._deps import ServiceDep, WriteAccess
from lumenrec.serving.schemas import EventIn, FeedbackBatchIn, FeedbackOut

__all__ = ["router"]

router = APIRouter(tags=["feedback"], dependencies=[WriteAccess])


@router.post("/feedback", response_model=FeedbackOut)
def post_feedback(event: EventIn, service: ServiceDep) -> dict:
    """Store one event; a repeated ``event_id`` answers ``{"duplicate": true}`` and is stored once.

    The event reaches the user's next recommendations at once (fold-in), without a retrain.
    """
    return service.ingest([event.model_dump()])


@router.post("/feedback/batch", response_model=FeedbackOut)
def post_feedback_batch(batch: FeedbackBatchIn, service: ServiceDep) -> dict:
    """Store up to 10,000 events in one transaction (all or none); 413 above the limit."""
    return service.ingest([e.model_dump() for e in batch.events])
