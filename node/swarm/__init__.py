"""The swarm: DHT bootstrap, barriers, and collaborative optimization over hivemind.

hivemind is imported only inside this package (and the trainer's hand-off to it).
"""
