"""Adapters that turn the live system into model facts. OSError is translated here, once."""
