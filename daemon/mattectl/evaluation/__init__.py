"""Measuring quality and speed: matting metrics, the evaluation set, benchmarks and the report."""
