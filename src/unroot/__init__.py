"""unroot: run network services without root, and explain exactly why they fail."""

__version__ = "0.1.0"

#: The first key of every JSON document unroot prints (explain, explain batch lines, caps, lint,
#: rules, doctor, verify; the schemas in unroot/schemas/ require it).  Raised when a key changes
#: meaning or goes away; new keys do not raise it.
SCHEMA_VERSION = 1

__all__ = ["SCHEMA_VERSION", "__version__"]
