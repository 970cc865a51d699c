"""Benchmarks, run by `make bench`: each prints RESULT and RATIO lines beside its reference figure."""
