"""unroot lint: deployment files → facts → model verdicts → findings."""
