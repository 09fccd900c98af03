"""One parser per input kind; each returns a ParsedFile (facts with file:line), never raises."""
