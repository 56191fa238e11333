"""Closing the loop from the inbox: bounces (VERP-addressed DSNs), complaints (ARF), mailto
unsubscribes, and forgetting a person. Above ``send``, below ``service``."""

from digest.feedback.events import EventKind, FeedbackEvent, apply_event
from digest.feedback.privacy import address_hash, forget, is_forgotten

__all__ = [
    "EventKind",
    "FeedbackEvent",
    "address_hash",
    "apply_event",
    "forget",
    "is_forgotten",
]
