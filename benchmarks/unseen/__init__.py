"""A model of our own (not from the zoo) for the bring-your-own-model benchmark; see benchmarks/byom_make.py."""
