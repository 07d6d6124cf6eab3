"""hivemind's butterfly all-reduce with a robust reduce step.

In hivemind's all-reduce every peer is the reducer of one partition of the
flat gradient: each sender streams it the matching parts, the reducer's
``TensorPartReducer`` keeps a running weighted sum, and once every sender's
part is in, it returns ``sum / total weight`` to all of them. Here the reducer
keeps every sender's part instead and combines them with the configured
``Aggregator`` (CenteredClip by default), with self-reported weights clamped so
that no sender has more than 1/n of the say. Nothing else of the protocol
changes: wire format, matchmaking, timeouts and bans are hivemind's.

Classes are subclasses, never copies of the package: ``RobustTensorPartReducer``
(a drop-in reducer), ``RobustAllReduceRunner`` (swaps its reducer in),
``RobustGradientAverager`` (runs that runner and transforms what this peer
sends: worker momentum, and whatever the injected ``Hooks`` change). Hand it to
``hivemind.Optimizer(grad_averager_factory=...)``; ``node.swarm.collab.make_optimizer`` does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import torch
from hivemind.averaging.allreduce import AllReduceRunner, AveragingMode
from hivemind.averaging.partition import AllreduceException, BannedException, TensorPartReducer
from hivemind.optim.grad_averager import GradientAverager
from hivemind.proto import averaging_pb2
from hivemind.utils import get_dht_time
from hivemind.utils.asyncio import as_aiter, azip

from node.hooks import NO_HOOKS, GradientTransform, Hooks
from node.swarm.hivemind_ext.step_control import install as install_round_cancel_fix
from node.swarm.momentum import chain
from node.swarm.robust import Aggregator

# every averager of hivenet (sync and DiLoCo) is built from this module: hivemind's cancellation of a round
# often left the round in the matchmaking (node.swarm.hivemind_ext.step_control)
install_round_cancel_fix()

log = logging.getLogger(__name__)


class RoundGroup(dict):  # type: ignore[type-arg]
    """What a finished round's step returns: hivemind's ``{peer id: gathered data}``, plus the round's
    ``group_id`` (random, made by matchmaking, the same on every member). It names the round: members
    may be at different local epochs (hivemind lets a peer lag one epoch), and the same members meet
    again next round, so neither the epoch nor the membership identifies a round.

    hivemind reports a round as a success even when parts of it failed; two flags say what failed here:
    ``complete`` is False when a reducer never returned its partition (this member kept its own values
    there: its result alone is unusable), ``reduced_all`` is False when this member, as a reducer,
    dropped a sender before it had sent every part (the partition every member got from it leaves that
    sender out: the round is not the aggregate of its group). ``failed`` names the peers this member saw
    fail (for logs)."""

    def __init__(self, gathered: dict, group_id: bytes, complete: bool = True,  # type: ignore[type-arg]
                 reduced_all: bool = True, failed: tuple[str, ...] = ()) -> None:
        super().__init__(gathered)
        self.group_id = group_id
        self.complete, self.reduced_all, self.failed = complete, reduced_all, failed


class _PartCollector:
    """Takes the place of the reducer's running sum: keeps each sender's part, aggregates when asked.

    ``TensorPartReducer`` calls ``accumulator.add_(part, alpha=weight)`` per sender and
    ``accumulator.div_(total_weight)`` once all are in; those are the only two uses.
    """

    def __init__(self, shape: torch.Size, aggregator: Aggregator) -> None:
        self.shape, self.aggregator = shape, aggregator
        self.parts: list[torch.Tensor] = []
        self.weights: list[float] = []

    def add_(self, part: torch.Tensor, alpha: float = 1.0) -> "_PartCollector":
        self.parts.append(part.reshape(self.shape).to(torch.float32))
        self.weights.append(float(alpha))
        return self

    def div_(self, denominator: float) -> torch.Tensor:
        if not self.parts:  # every sender of this part failed: nothing to aggregate (hivemind would give 0/0)
            return torch.zeros(self.shape)
        stacked = torch.stack(self.parts)
        return self.aggregator.aggregate(stacked, torch.tensor(self.weights)).reshape(self.shape)


class RobustTensorPartReducer(TensorPartReducer):
    """A ``TensorPartReducer`` whose result per part is ``aggregator(parts of every sender)``.

    It also fixes a hang: every sender's task (and this peer's own) awaits the same future for a part's
    result, and in asyncio cancelling a task cancels the bare future it awaits. When a sender dies
    mid-round, its stream handler is cancelled, which cancelled the shared future under every other
    sender and under this peer's own part: the reducer broke ("invalid state" on the next result) and
    this peer waited for its own partition until the all-reduce timeout
    (``tests/robust/test_kill_mid_allreduce.py`` kills senders mid-round). Here each waiter is shielded.
    """

    def __init__(self, part_shapes: Sequence[torch.Size], num_senders: int, aggregator: Aggregator) -> None:
        self.aggregator = aggregator  # set first: the base __init__ calls reset_accumulators
        super().__init__(part_shapes, num_senders)

    async def accumulate_part(self, sender_index: int, part_index: int, tensor_part: torch.Tensor,
                              weight: float = 1.0) -> torch.Tensor:
        # hivemind's TensorPartReducer.accumulate_part, with the shared future shielded (see the class docstring)
        assert 0 <= sender_index < self.num_senders, "invalid sender index"
        assert 0 <= part_index < self.num_parts, "invalid part index"
        self.num_parts_received[sender_index] += 1
        while part_index > self.current_part_index:  # wait for the previous parts to finish
            await asyncio.wait({self.current_part_future, asyncio.create_task(self.finished.wait())},
                               return_when=asyncio.FIRST_COMPLETED)
            if self.finished.is_set():
                raise AllreduceException(f"attempted to aggregate part in a finalized {self.__class__.__name__}")
        if self.sender_failed_after[sender_index] != float("inf"):
            raise BannedException(f"sender {sender_index} was banned in background")
        assert part_index == self.current_part_index
        current_part_future = self.current_part_future
        if part_index < self.sender_failed_after[sender_index]:
            self.accumulator.add_(tensor_part, alpha=weight)
            self.current_part_accumulated_from += 1
            self.denominator += weight
            self.check_current_part_finished()
        return await asyncio.shield(current_part_future)

    def reset_accumulators(self) -> None:
        super().reset_accumulators()
        if not self.finished.is_set():
            self.accumulator = _PartCollector(self.part_shapes[self.current_part_index], self.aggregator)  # type: ignore[assignment]


class RobustAllReduceRunner(AllReduceRunner):
    """hivemind's ``AllReduceRunner`` reducing its partition with ``aggregator``.

    ``hooks.stream_spacing_s()`` (0 on a real node) spaces this peer's streams to the other reducers: they
    start one at a time, that many seconds apart (its parts for the k-th reducer to get a turn leave
    k * delay s after the round began, all at once), so a test that kills the peer between two turns
    leaves some reducers with all of its parts and the others with none; ``hooks.on_send_start()`` is
    called once, when the first delay begins. (A delay per message would stretch a round by parts x reducers x delay:
    every tensor is at least one part, ~20 s a round for the tiny test model.)

    After the round, ``complete`` says whether every reducer returned its partition to this peer,
    ``reduced_all`` whether this peer reduced its partition with every sender's every part, and
    ``failed`` which peers this runner saw fail.
    """

    def __init__(self, *, aggregator: Aggregator, hooks: Hooks = NO_HOOKS, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        plain = self.tensor_part_reducer
        self.tensor_part_reducer = RobustTensorPartReducer(plain.part_shapes, plain.num_senders, aggregator)
        plain.finished.set()  # retire the unused plain reducer quietly (its finalize would log "received 0%")
        self.hooks, self.stream_spacing = hooks, hooks.stream_spacing_s()
        self._send_started = False
        self._send_turn = asyncio.Lock()  # with a delay, streams to the reducers start one by one
        self.unreachable: set[Any] = set()  # reducers this peer's exchange with failed

    @property
    def complete(self) -> bool:
        """Every reducer returned its partition (hivemind keeps this peer's local values where one did not)."""
        return self.tensor_part_container.failed_size == 0

    @property
    def reduced_all(self) -> bool:
        """This peer's partition had every sender's input in every part (hivemind leaves a sender dropped
        midway out of the parts it had not sent yet)."""
        reducer = self.tensor_part_reducer
        return all(failed_after >= reducer.num_parts for failed_after in reducer.sender_failed_after)

    @property
    def failed(self) -> tuple[str, ...]:
        reducer = self.tensor_part_reducer
        senders = {self.sender_peer_ids[i] for i, after in enumerate(reducer.sender_failed_after) if after < reducer.num_parts}
        return tuple(sorted(peer.to_base58() for peer in senders | self.unreachable))

    async def _communicate_with_peer(self, peer_id: Any) -> None:
        try:
            await super()._communicate_with_peer(peer_id)
        except BaseException as e:
            self.unreachable.add(peer_id)
            log.info("all-reduce %s: the exchange with %s failed (%r)", self.group_id.hex()[:8], peer_id, e)
            raise

    async def _generate_input_for_peer(self, peer_index: int) -> AsyncIterator[averaging_pb2.AveragingData]:
        first = True
        async for message in super()._generate_input_for_peer(peer_index):
            if first and self.stream_spacing > 0:
                async with self._send_turn:
                    if not self._send_started:
                        self._send_started = True
                        self.hooks.on_send_start()
                    await asyncio.sleep(self.stream_spacing)
            first = False
            yield message


async def _keep_key(group_info: Any) -> None:
    """Instead of hivemind's ``GroupKeyManager.update_key_on_group_assembled``: the key stays as it is."""


class RobustGradientAverager(GradientAverager):
    """``GradientAverager`` that reduces with ``aggregator`` and sends ``transform(accumulated gradients)``
    (then ``hooks.gradient_transform()``'s, when the hooks give one).

    The all-reduce runs in the averager's own process (forked at construction), so the
    aggregator must be set before ``super().__init__`` starts it.
    """

    def __init__(
        self,
        parameters: Any,
        *,
        aggregator: Aggregator,
        transform: GradientTransform | None = None,
        hooks: Hooks = NO_HOOKS,
        **kwargs: Any,
    ) -> None:
        self.aggregator, self.hooks = aggregator, hooks
        self.transform = chain(transform, hooks.gradient_transform())
        self.last_sent: list[torch.Tensor] = []  # what this peer contributed to the latest round (main process)
        # group id -> (complete, reduced_all, failed) of the runner (RoundGroup); in the averager's process
        self._health: dict[bytes, tuple[bool, bool, tuple[str, ...]]] = {}
        super().__init__(parameters, **kwargs)

    # The optimizer keys each epoch's matchmaking with group bits (node.swarm.hivemind_ext.optimizer). hivemind
    # moves each member of an assembled group to a bucket of its own (new group bits), so a retry after a failed
    # all-reduce would look under a key nobody else has and miss the epoch's round; the matchmaking (built in the
    # averager's process) keeps the epoch's key instead.
    @property
    def _matchmaking(self) -> Any:
        return self.__dict__.get("_epoch_keyed_matchmaking")

    @_matchmaking.setter
    def _matchmaking(self, matchmaking: Any) -> None:
        matchmaking.group_key_manager.update_key_on_group_assembled = _keep_key
        self.__dict__["_epoch_keyed_matchmaking"] = matchmaking

    @torch.no_grad()
    def load_accumulators_into_averager_(self) -> None:
        super().load_accumulators_into_averager_()
        with self.get_tensors() as tensors:
            if self.transform is not None:
                for tensor, sent in zip(tensors, self.transform(tensors)):
                    tensor.copy_(sent)
            self.last_sent = [t.detach().clone() for t in tensors]

    async def _aggregate_with_group(self, group_info: Any, min_vector_size: int, **kwargs: Any) -> RoundGroup:
        gathered = await super()._aggregate_with_group(group_info, min_vector_size, **kwargs)
        complete, reduced_all, failed = self._health.pop(group_info.group_id, (True, True, ()))
        return RoundGroup(gathered, group_info.group_id, complete=complete, reduced_all=reduced_all, failed=failed)

    async def _run_allreduce_inplace_(
        self, tensors: Sequence[torch.Tensor], group_info: Any, group_id: bytes | None = None, **kwargs: Any
    ) -> None:
        # hivemind's method with the runner class swapped, and one fix: an attempt that fails after some
        # averaged parts were added leaves the tensors as they were. hivemind retries a failed attempt with
        # a new group in the same step, and would otherwise send that group a half-averaged input.
        inputs = [t.detach().clone() for t in tensors]
        try:
            await self._run_robust_allreduce(tensors, group_info, group_id, **kwargs)
        except BaseException:
            with torch.no_grad():
                for tensor, original in zip(tensors, inputs):
                    tensor.copy_(original)
            raise

    async def _run_robust_allreduce(
        self, tensors: Sequence[torch.Tensor], group_info: Any, group_id: bytes | None, **kwargs: Any
    ) -> None:
        group_id = group_info.group_id if group_id is None else group_id
        runner = RobustAllReduceRunner(
            aggregator=self.aggregator, hooks=self.hooks,
            p2p=self._p2p, servicer_type=type(self), prefix=self.prefix, tensors=tensors,
            group_id=group_id, ordered_peer_ids=group_info.peer_ids, **kwargs,
        )
        assert group_id in self._running_groups, f"Group id {group_id} was not registered in _register_allreduce_group"
        self._running_groups[group_id].set_result(runner)
        if runner.modes[group_info.peer_ids.index(self.peer_id)] != AveragingMode.AUX:
            async for tensor, update in azip(as_aiter(*tensors), runner):
                tensor.add_(update, alpha=self._averaging_alpha)
                self.last_updated = get_dht_time()
                self._state_updated.set()
        else:
            async for _ in runner:
                raise ValueError("aux peers should not receive averaged tensors")
        self._health[group_id] = (runner.complete, runner.reduced_all, runner.failed)
