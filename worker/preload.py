"""Imported by the worker's forkserver before it forks job processes (`preload_modules`), so
the first words' first-use work is done once for all of them."""

from worker.warmup import warm_up

warm_up()
