"""The Celery workers: the app (``app``) and the tasks, one-line shims over the core (``tasks``)."""

__all__ = [
    "app",
    "tasks",
]
