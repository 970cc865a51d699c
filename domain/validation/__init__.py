"""The validation context: rule sets and the evaluations that score outputs against them."""
