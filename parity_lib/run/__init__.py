"""The run: the Section D checks and the gate, cycles and repeats, generation, the study store, sweeps."""
