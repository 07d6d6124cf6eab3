"""The validator: checks signed receipts and settles each epoch's rewards on the ledger.

    checker.py     one epoch's receipts -> verdicts (static checks, recomputation of a sample)
    settlement.py  verdicts -> rewards -> cumulative Merkle root; the files claims are made from
    service.py     Validator: polls receipts, settles (or watches and disputes), finalizes

Imports go one way inside the package: service -> checker, settlement.
"""
