"""Averaging DiLoCo pseudo-gradients so that every member ends with the same bits.

hivemind's all-reduce returns each member ``own part + (aggregate - own part)``,
decoded from a message compressed per member. With float32 that differs between
members by round-off; with 8-bit or float16 compression by a quantization
error, so shared parameters updated from it would drift apart round after
round. ``ConsistentAllReduceRunner`` changes the return path: the reducer
encodes the aggregate of its partition once and sends those same bytes to every
member (itself included, through the same codec), and members *overwrite*
their part with it. Every member decodes identical messages, so every member
holds an identical vector.

It also makes failures loud: if any part could not be reduced or returned (a
dead reducer, a banned sender, a codec that cannot decode) the round raises
instead of quietly keeping local values for those parts, and the averager
copies the result into its tensors only after the whole round succeeded.

And it counts what it moves: payload bytes sent and received per member (the
serialized ``AveragingData`` messages of the all-reduce), in a shared-memory
counter the main process reads (``PseudoGradientAverager.wire_bytes``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import torch
from hivemind.averaging import DecentralizedAverager
from hivemind.averaging.allreduce import AllreduceException, AllReduceRunner, AveragingMode
from hivemind.averaging.partition import BannedException
from hivemind.compression import deserialize_torch_tensor, serialize_torch_tensor
from hivemind.proto import averaging_pb2
from hivemind.utils import get_dht_time
from hivemind.utils.asyncio import aiter_with_timeout, amap_in_executor, attach_event_on_finished

from node.swarm import codecs
from node.swarm.hivemind_ext.robust_allreduce import RobustTensorPartReducer, RoundGroup
from node.swarm.robust import Aggregator

SENT, RECEIVED = 0, 1  # indices into the shared byte counter


class ConsistentAllReduceRunner(AllReduceRunner):
    """A robust all-reduce (``aggregator`` reduces each partition) whose members end bit-identical, or fail."""

    def __init__(self, *, aggregator: Aggregator, wire_bytes: torch.Tensor, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        plain = self.tensor_part_reducer
        self.tensor_part_reducer = RobustTensorPartReducer(plain.part_shapes, plain.num_senders, aggregator)
        plain.finished.set()  # retire the unused plain reducer quietly (its finalize would log "received 0%")
        self.wire_bytes = wire_bytes
        self._encoded: dict[int, Any] = {}  # part index -> the aggregate as sent (encoded once, sent to all)
        self.failures: list[str] = []

    def _count(self, which: int, message: averaging_pb2.AveragingData) -> None:
        self.wire_bytes[which] += message.ByteSize()

    def _encode_aggregate(self, part_index: int, aggregate: torch.Tensor) -> Any:
        if part_index not in self._encoded:
            self._encoded[part_index] = serialize_torch_tensor(
                aggregate, self.tensor_part_container.compression.compression_type)
        return self._encoded[part_index]

    async def run(self) -> AsyncIterator[torch.Tensor]:
        async for tensor in super().run():
            yield tensor
        container = self.tensor_part_container
        if container.failed_size or self.banned_senders or self.failures:
            raise AllreduceException(
                f"incomplete round: {container.failed_size} of {container.total_size} values not reduced, "
                f"{len(self.banned_senders)} sender(s) dropped; {'; '.join(self.failures) or 'no detail'}")

    async def _ban_sender(self, peer_id: Any) -> None:
        self.failures.append(f"dropped sender {peer_id}")
        await super()._ban_sender(peer_id)

    async def _generate_input_for_peer(self, peer_index: int) -> AsyncIterator[averaging_pb2.AveragingData]:
        async for message in super()._generate_input_for_peer(peer_index):
            self._count(SENT, message)
            yield message

    async def _communicate_with_peer(self, peer_id: Any) -> None:
        peer_index = self.ordered_peer_ids.index(peer_id)
        container = self.tensor_part_container
        try:
            if peer_id == self.peer_id:
                await self._reduce_own_partition(peer_index)
                return
            done_sending = asyncio.Event()
            inputs = attach_event_on_finished(self._generate_input_for_peer(peer_index), done_sending)
            stream = await self._get_peer_stub(peer_id).rpc_aggregate_part(inputs)
            if self.should_delay_results(self.peer_id):
                await done_sending.wait()

            def decode(message: averaging_pb2.AveragingData) -> torch.Tensor:
                if message.code != averaging_pb2.AVERAGED_PART:
                    raise AllreduceException(f"{peer_id} sent {averaging_pb2.MessageCode.Name(message.code)}")
                self._count(RECEIVED, message)
                return deserialize_torch_tensor(message.tensor_part)

            part_index = 0
            async for aggregate in amap_in_executor(decode, aiter_with_timeout(stream, self.reducer_timeout),
                                                    max_prefetch=container.prefetch):
                container.register_processed_part(peer_index, part_index, aggregate)
                part_index += 1
            if part_index != container.num_parts_by_peer[peer_index]:
                raise AllreduceException(f"{peer_id} returned {part_index} of {container.num_parts_by_peer[peer_index]} parts")
        except BaseException as e:
            self.failures.append(f"reducer {'(this peer)' if peer_id == self.peer_id else peer_id}: {e!r}")
            container.register_failed_reducer(peer_index)
            raise

    async def _reduce_own_partition(self, peer_index: int) -> None:
        """This peer's own partition goes through the codec too, so it holds what every other member decodes."""
        sender_index = self.sender_peer_ids.index(self.peer_id)
        for part_index, part in enumerate(self.parts_for_local_averaging):
            aggregate = await self.tensor_part_reducer.accumulate_part(sender_index, part_index, part, weight=self.weight)
            decoded = deserialize_torch_tensor(self._encode_aggregate(part_index, aggregate))
            self.tensor_part_container.register_processed_part(peer_index, part_index, decoded)

    async def _accumulate_parts_streaming(self, stream: AsyncIterator[averaging_pb2.AveragingData],
                                          sender_index: int) -> AsyncIterator[averaging_pb2.AveragingData]:
        part_index = 0
        try:
            async def counted() -> AsyncIterator[averaging_pb2.AveragingData]:
                async for message in stream:
                    self._count(RECEIVED, message)
                    yield message

            async for part, weight in amap_in_executor(
                lambda m: (deserialize_torch_tensor(m.tensor_part), m.weight), counted(),
                max_prefetch=self.tensor_part_container.prefetch,
            ):
                try:
                    aggregate = await self.tensor_part_reducer.accumulate_part(sender_index, part_index, part, weight=weight)
                except BannedException:
                    break
                encoded = self._encode_aggregate(part_index, aggregate)
                part_index += 1
                reply = averaging_pb2.AveragingData(code=averaging_pb2.AVERAGED_PART, tensor_part=encoded)
                self._count(SENT, reply)
                yield reply
        finally:
            if part_index != self.tensor_part_reducer.num_parts:
                await self._ban_sender(self.sender_peer_ids[sender_index])


class PseudoGradientAverager(DecentralizedAverager):
    """A ``DecentralizedAverager`` over the pseudo-gradient tensors that runs ``ConsistentAllReduceRunner``.

    ``step()`` returns a ``RoundGroup`` (hivemind's gathered metadata plus the group id) once the
    averaged values are in ``get_tensors()``; a failed round raises and leaves the tensors as they were.
    """

    def __init__(self, averaged_tensors: Sequence[torch.Tensor], dht: Any, *, aggregator: Aggregator,
                 compression: str = "none", **kwargs: Any) -> None:
        self.aggregator = aggregator
        self.wire_bytes = torch.zeros(2, dtype=torch.int64).share_memory_()  # before the fork: shared with it
        super().__init__(averaged_tensors=averaged_tensors, dht=dht, compression=codecs.compression(compression), **kwargs)

    @property
    def bytes_sent(self) -> int:
        return int(self.wire_bytes[SENT])

    @property
    def bytes_received(self) -> int:
        return int(self.wire_bytes[RECEIVED])

    async def _aggregate_with_group(self, group_info: Any, min_vector_size: int, **kwargs: Any) -> RoundGroup:
        gathered = await super()._aggregate_with_group(group_info, min_vector_size, **kwargs)
        return RoundGroup(gathered, group_info.group_id)

    async def _run_allreduce_inplace_(self, tensors: Sequence[torch.Tensor], group_info: Any,
                                      group_id: bytes | None = None, **kwargs: Any) -> None:
        group_id = group_info.group_id if group_id is None else group_id
        runner = ConsistentAllReduceRunner(
            wire_bytes=self.wire_bytes, aggregator=self.aggregator, p2p=self._p2p, servicer_type=type(self),
            prefix=self.prefix, tensors=tensors, group_id=group_id, ordered_peer_ids=group_info.peer_ids, **kwargs)
        assert group_id in self._running_groups, f"group {group_id!r} was not registered"
        self._running_groups[group_id].set_result(runner)
        if runner.modes[group_info.peer_ids.index(self.peer_id)] == AveragingMode.AUX:
            async for _ in runner:
                raise ValueError("aux peers should not receive averaged tensors")
            return
        results = [tensor async for tensor in runner]  # all or nothing: copy only after the round succeeded
        with torch.no_grad():
            for tensor, result in zip(tensors, results, strict=True):
                tensor.copy_(result)
        self.last_updated = get_dht_time()
        self._state_updated.set()
