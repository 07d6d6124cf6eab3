"""A local network on one machine: N peer processes, a live view, a run directory and a summary."""
