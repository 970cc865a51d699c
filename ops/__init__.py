"""The composition root and the `aiwp` command line."""
