"""One receipt's life, from a trainer's gradients to the record a validator checks.

    sketch.py     the count-sketch of an epoch's mean gradient, and its recomputation
    snapshots.py  epoch-start parameters on disk, content-addressed by their hash
    layout.py     where each vetted shard starts in the training text (for data credit)
    recorder.py   WorkRecorder: the trainer's hook that sketches, signs and publishes
    wire.py       receipt signatures and the strict wire schema every peer parses
    spool.py      receipts the DHT has not accepted yet, kept across a restart
    board.py      the DHT receipt board of ``node.swarm`` bound to this wire format
    snapshot_store.py     a bounded store of snapshots (keep N epochs, a byte cap), their raw form
    snapshot_exchange.py  the snapshot protocol over P2P streams: server, verifying fetcher
    snapshot_service.py   a trainer's served store (serves, announces in the DHT)
    snapshot_source.py    where a validator's checker gets snapshots: SnapshotSource, the local folder
    snapshot_fetch.py     NetworkSnapshotSource: from the holders the DHT names, verified, cached

No module here imports hivemind: the DHT and P2P parts live in ``node.swarm`` (``receipt_board``,
``snapshot_board``, ``snapshot_p2p``, ``streams``), which ``board.py`` and the snapshot modules use;
the validator's recomputation from a local folder loads without them.
"""
