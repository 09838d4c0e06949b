"""Benchmarks for Baton's speed and memory budgets; each prints distributions, never asserts."""
