"""Chain access for hivenet: the only package that imports web3.

``LedgerClient`` (client.py) is the entry point; it sends every transaction through a
SQLite outbox (outbox.py, sender.py) and decodes contract reverts into one exception
class per Solidity custom error (contract_errors.py, revert.py).
"""
