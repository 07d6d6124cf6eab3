"""One receipt's life, from a trainer's gradients to the record a validator checks.

    sketch.py     the count-sketch of an epoch's mean gradient, and its recomputation
    snapshots.py  epoch-start parameters on disk, content-addressed by their hash
    layout.py     where each vetted shard starts in the training text (for data credit)
    recorder.py   WorkRecorder: the trainer's hook that sketches, signs and publishes
    wire.py       receipt signatures and the strict wire schema every peer parses
    spool.py      receipts the DHT has not accepted yet, kept across a restart
    board.py      the DHT receipt board of ``node.swarm`` bound to this wire format

No module here imports hivemind: the DHT part lives in ``node.swarm.receipt_board``, which
``board.py`` binds; the rest (the validator's recomputation included) loads without it.
"""
