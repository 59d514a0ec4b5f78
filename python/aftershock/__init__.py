"""aftershock: measure and trade market reactions to macro releases and policy events."""

from aftershock._engine import __version__

__all__ = ["__version__"]
