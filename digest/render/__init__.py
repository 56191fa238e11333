"""Rendering an edition once per variant: Jinja2, premailer, the text part (``renderer``)."""

__all__ = ["renderer"]
