"""Closing the loop from the inbox: bounces (VERP-addressed DSNs), complaints (ARF), mailto
unsubscribes and relay webhooks, each turned into the subscriber rule it sets off. Above
``send``, below ``service``."""

from digest.feedback.events import EventKind, FeedbackEvent, apply_event

__all__ = ["EventKind", "FeedbackEvent", "apply_event"]
