"""A node's side of the run manifest: its settings, fetching and verifying it, applying it to a node's config.

``config`` holds the ``[run]`` keys' component; ``resolve`` loads a manifest from a file or the DHT and
checks it; ``apply`` turns it into the node's settings and refuses settings that contradict it; ``create``
builds a manifest from settings for ``hivenet run create``.
"""
