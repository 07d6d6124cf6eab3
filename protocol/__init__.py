"""Pure rules every hivenet node must agree on: no I/O, no network, no torch.

Nothing in this package imports ``node``, torch, web3 or hivemind.
"""
