"""unroot: run network services without root, and explain exactly why they fail."""

__version__ = "0.1.0"

__all__ = ["__version__"]
