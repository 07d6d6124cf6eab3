"""The validator: checks signed receipts and settles each epoch's rewards on the ledger.

    checker.py     one epoch's receipts -> verdicts (static checks, recomputation of a sample)
    settlement.py  verdicts -> rewards -> cumulative Merkle root; the files claims are made from
    service.py     Validator: polls receipts, settles (or watches and disputes), finalizes
    config.py      ValidatorDaemonConfig: the [validator] config section
    access.py      the daemon's chain access, checked before anything is written
    journal.py     the daemon's state on disk: what a restart resumes from
    status.py      the daemon's /status document and stage
    daemon.py      ValidatorDaemon: `hivenet validator start`

Imports go one way inside the package: daemon -> service, access, journal, status, config;
service -> checker, settlement. config imports nothing (node.config reads its defaults).
"""
