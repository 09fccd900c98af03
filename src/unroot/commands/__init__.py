"""One module per top-level command: argument parsers and renderers, no kernel logic."""
