"""The DiLoCo pseudo-gradient averager, for the trainer: every member ends a round with the same bits, or fails.

The class is a hivemind subclass and lives in the declared hivemind layer
(``node.swarm.hivemind_ext.pseudo_averager``); this module is its public name outside ``node.swarm``.
"""

from node.swarm.hivemind_ext.pseudo_averager import PseudoGradientAverager

__all__ = ["PseudoGradientAverager"]
