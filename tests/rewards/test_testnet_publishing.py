"""The testnet's publishing validator: every settled epoch's tree goes to the publisher, and a publisher that
fails does not stop settlement (no swarm: the publisher is a stand-in).

    .venv/bin/python -m pytest tests/rewards/test_testnet_publishing.py -q
"""

from __future__ import annotations

from pathlib import Path

from node.testnet.validation import PublishingValidator
from node.validator.service import ValidatorConfig
from protocol.rewards_publication import RewardsPublication, RewardsUnavailable, parse
from tests.receipts.sim import RUN, TINY, make_peers, simulate, small_corpus


class Collecting:
    """Keeps what it is asked to publish; refuses the epochs in ``refuse`` as a DHT that does not answer."""

    def __init__(self, refuse: set[int] = frozenset()) -> None:
        self.published: list[RewardsPublication] = []
        self.refuse = refuse

    def publish(self, publication: RewardsPublication) -> str:
        if publication.ledger_epoch in self.refuse:
            raise RewardsUnavailable("the DHT did not store the announcement")
        self.published.append(publication)
        return publication.content_id


def _settle(tmp_path: Path, publisher: Collecting, epochs: int = 3):
    corpus, layout = small_corpus()
    receipts = simulate(make_peers(["honest", "honest"]), epochs=epochs, steps=2, snapshot_dir=tmp_path / "snap",
                        corpus=corpus, layout=layout)
    cfg = ValidatorConfig(RUN, TINY, tmp_path / "snap", tmp_path / "out", target_batch_size=64)
    v = PublishingValidator(cfg, lambda e: receipts.get(e, []), None, corpus=corpus, publisher=publisher)
    v.layout = layout
    v.poll(ahead=epochs + 1)
    return v, v.settle_ready(final=True)


def test_each_settled_epoch_publishes_the_tree_it_settled(tmp_path: Path) -> None:
    publisher = Collecting()
    v, settled = _settle(tmp_path, publisher)

    assert [p.ledger_epoch for p in publisher.published] == [s.ledger_epoch for s in settled] == [1, 2, 3]
    for pub, s in zip(publisher.published, settled):
        assert pub.run_id == RUN and pub.root == s.root and dict(parse(pub.encode()).tree.amounts) == s.cumulative
    assert v.published == {p.ledger_epoch: p.content_id for p in publisher.published} and not v.publish_errors


def test_a_publisher_that_fails_leaves_settlement_going(tmp_path: Path) -> None:
    v, settled = _settle(tmp_path, Collecting(refuse={2}))

    assert [s.ledger_epoch for s in settled] == [1, 2, 3] and sorted(v.published) == [1, 3]
    assert len(v.publish_errors) == 1 and "ledger epoch 2" in v.publish_errors[0]
