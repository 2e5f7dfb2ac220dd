"""Fake devices shipped in the product: for tests, the demo, benchmarks and users."""
