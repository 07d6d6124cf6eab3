"""The declared hivemind layer: every subclass or patch of a hivemind class, and nothing else.

``PATCHES.md`` beside this file lists each private (or template) method, attribute and class of hivemind
these modules rely on, and why; ``tests/swarm/test_hivemind_pins.py`` pins them against the installed
hivemind. Outside this package no module imports a private name of hivemind (``tests/test_layering.py``).
The rest of hivenet uses these classes through ``node.swarm`` (``collab.make_optimizer``,
``pseudo_averager``, ``codecs``).
"""
