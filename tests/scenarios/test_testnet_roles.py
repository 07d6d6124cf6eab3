"""Which testnet peers attack: the last `byzantine` of the peers started at once, never a peer added later."""

from node.testnet.network import Testnet, TestnetConfig


def _attacks(cfg: TestnetConfig, index: int) -> bool:
    return "--attack" in Testnet(cfg)._args(index)


def test_only_the_last_byzantine_initial_peers_attack_and_joiners_never_do(tmp_path):
    honest = TestnetConfig(run_dir=tmp_path, peers=3)
    assert [_attacks(honest, i) for i in range(5)] == [False] * 5  # indices 3, 4: peers added by add_peer
    attacked = TestnetConfig(run_dir=tmp_path, peers=4, byzantine=1, attack="gaussian")
    assert [_attacks(attacked, i) for i in range(6)] == [False, False, False, True, False, False]
    args = Testnet(attacked)._args(3)
    assert args[args.index("--attack") + 1] == "gaussian"
