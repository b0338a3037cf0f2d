"""The hardware-aware mapping search: space, strategy (Optuna), executors, Pareto front."""
