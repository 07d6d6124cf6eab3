"""The effectful shell of hivenet: training, swarm, ledger, telemetry, CLI."""
