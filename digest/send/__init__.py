"""Sending an edition: the mailer that personalises each message (``mailer``), the batch loop
(``batch``) with its lease (``lease``) and outcomes (``outcomes``), the global rate limit
(``ratelimit``) and what is due (``schedule``)."""

__all__ = [
    "batch",
    "lease",
    "mailer",
    "outcomes",
    "ratelimit",
    "schedule",
]
