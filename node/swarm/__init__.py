"""The swarm: DHT bootstrap, barriers, P2P streams, round policy and agreement, and collaborative optimization
over hivemind.

hivemind is imported only inside this package; every subclass or patch of it lives in ``hivemind_ext``
(``tests/test_layering.py`` checks both). Other packages use the helpers here (``dht``, ``streams``,
``collab``, ``pseudo_averager``, ``codecs``).
"""
