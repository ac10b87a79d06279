"""Developer tooling: local services for `make run`, the tests and the benchmarks."""
