"""The installed hivemind still has every private (and template) method, attribute and class that hivenet's
declared hivemind layer relies on (node/swarm/hivemind_ext/PATCHES.md), with the same signatures.

An upgrade of hivemind that renames, removes or changes one of them fails here, naming it, instead of
silently changing what a round does. Fast: it reads classes and their source, starts nothing.

    .venv/bin/python -m pytest tests/swarm/test_hivemind_pins.py -q
"""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import textwrap

import pytest

import hivemind

HIVEMIND_VERSION = "1.1.12"

# Methods we override or call, and the signatures we override or call them with (annotations left out).
SIGNATURES = [
    # CollaborativeOptimizer (node/swarm/hivemind_ext/optimizer.py)
    ("hivemind.optim.optimizer.Optimizer.__init__", "(self, *, dht, run_id, target_batch_size, batch_size_per_step=None, optimizer, params=None, scheduler=None, matchmaking_time=15.0, averaging_timeout=60.0, allreduce_timeout=None, next_chunk_timeout=None, load_state_timeout=600.0, reuse_grad_buffers=False, offload_optimizer=None, delay_optimizer_step=None, delay_grad_averaging=False, delay_state_averaging=True, average_state_every=1, use_local_updates=False, client_mode=None, auxiliary=False, grad_compression=hivemind.NoCompression(), grad_averager_factory=None, state_averaging_compression=hivemind.NoCompression(), load_state_compression=hivemind.NoCompression(), average_opt_statistics=(), extra_tensors=(), averager_opts=None, tracker_opts=None, performance_ema_alpha=0.1, shutdown_timeout=5, verbose=False)"),  # noqa: E501
    ("hivemind.optim.optimizer.Optimizer._maybe_schedule_gradient_averaging", "(self)"),
    ("hivemind.optim.optimizer.Optimizer._make_progress_tracker", "(self, target_batch_size, **kwargs)"),
    ("hivemind.optim.optimizer.Optimizer._make_state_averager", "(self, **kwargs)"),
    ("hivemind.optim.optimizer.Optimizer._update_global_epoch", "(self, grad_scaler)"),
    ("hivemind.optim.optimizer.Optimizer._tag_along_with_zero_weight", "(self, control)"),
    ("hivemind.optim.optimizer.Optimizer._average_gradients_and_load_into_optimizer", "(self, maybe_step_control)"),
    ("hivemind.optim.optimizer.Optimizer._load_averaged_gradients_into_optimizer_", "(self)"),
    ("hivemind.optim.optimizer.Optimizer._load_local_gradients_into_optimizer", "(self)"),
    ("hivemind.optim.optimizer.Optimizer.load_state_from_peers", "(self, **kwargs)"),
    ("hivemind.optim.optimizer.Optimizer.step", "(self, closure=None, batch_size=None, grad_scaler=None)"),
    # PaceTracker (progress_tracker.py)
    ("hivemind.optim.progress_tracker.ProgressTracker.__init__", "(self, dht, prefix, target_batch_size, *, client_mode=None, min_refresh_period=0.5, max_refresh_period=10, default_refresh_period=3, expected_drift_peers=3, expected_drift_rate=0.2, performance_ema_alpha=0.1, metadata_expiration=60.0, status_loglevel=10, private_key=None, daemon=True, start)"),  # noqa: E501
    ("hivemind.optim.progress_tracker.ProgressTracker._parse_swarm_progress_data", "(self, metadata)"),
    ("hivemind.optim.progress_tracker.ProgressTracker.pause_updates", "(self)"),
    ("hivemind.optim.progress_tracker.ProgressTracker.report_local_progress", "(self, local_epoch, samples_accumulated, update_global_samples=True)"),  # noqa: E501
    # RobustTensorPartReducer (robust_allreduce.py)
    ("hivemind.averaging.partition.TensorPartReducer.__init__", "(self, part_shapes, num_senders)"),
    ("hivemind.averaging.partition.TensorPartReducer.accumulate_part", "(self, sender_index, part_index, tensor_part, weight=1.0)"),  # noqa: E501
    ("hivemind.averaging.partition.TensorPartReducer.reset_accumulators", "(self)"),
    ("hivemind.averaging.partition.TensorPartReducer.check_current_part_finished", "(self)"),
    ("hivemind.averaging.partition.TensorPartContainer.register_processed_part", "(self, peer_index, part_index, part)"),
    ("hivemind.averaging.partition.TensorPartContainer.register_failed_reducer", "(self, peer_index)"),
    # RobustAllReduceRunner, ConsistentAllReduceRunner
    ("hivemind.averaging.allreduce.AllReduceRunner.__init__", "(self, *, p2p, servicer_type, prefix, group_id, tensors, weight=None, ordered_peer_ids, peer_fractions, modes=None, sender_timeout=None, reducer_timeout=None, **kwargs)"),  # noqa: E501
    ("hivemind.averaging.allreduce.AllReduceRunner.run", "(self)"),
    ("hivemind.averaging.allreduce.AllReduceRunner._communicate_with_peer", "(self, peer_id)"),
    ("hivemind.averaging.allreduce.AllReduceRunner._generate_input_for_peer", "(self, peer_index)"),
    ("hivemind.averaging.allreduce.AllReduceRunner._ban_sender", "(self, peer_id)"),
    ("hivemind.averaging.allreduce.AllReduceRunner._accumulate_parts_streaming", "(self, stream, sender_index)"),
    ("hivemind.averaging.allreduce.AllReduceRunner._get_peer_stub", "(self, peer)"),
    ("hivemind.averaging.allreduce.AllReduceRunner.should_delay_results", "(self, peer_id)"),
    # RobustGradientAverager, PseudoGradientAverager
    ("hivemind.optim.grad_averager.GradientAverager.__init__", "(self, parameters, *, dht, prefix, reuse_grad_buffers=False, accumulate_grads_on=None, client_mode=None, warn=True, averaged_grads=(), **kwargs)"),  # noqa: E501
    ("hivemind.optim.grad_averager.GradientAverager.load_accumulators_into_averager_", "(self)"),
    ("hivemind.optim.grad_averager.GradientAverager.reset_accumulated_grads_", "(self)"),
    ("hivemind.optim.grad_averager.GradientAverager.schedule_step", "(self, scheduled_time=None, **kwargs)"),
    ("hivemind.averaging.averager.DecentralizedAverager.__init__", "(self, averaged_tensors, dht, *, start, prefix, target_group_size=None, min_group_size=2, initial_group_bits='', min_matchmaking_time=5.0, request_timeout=3.0, averaging_alpha=1.0, part_size_bytes=524288, allreduce_timeout=None, next_chunk_timeout=None, sender_timeout=None, reducer_timeout=None, compression=hivemind.NoCompression(), state_compression=hivemind.NoCompression(), tensor_infos=None, bandwidth=None, min_vector_size=0, auxiliary=False, allow_state_sharing=None, declare_state_period=30, client_mode=None, daemon=True, shutdown_timeout=5)"),  # noqa: E501
    ("hivemind.averaging.averager.DecentralizedAverager._aggregate_with_group", "(self, group_info, min_vector_size, **kwargs)"),  # noqa: E501
    ("hivemind.averaging.averager.DecentralizedAverager._run_allreduce_inplace_", "(self, tensors, group_info, group_id=None, **kwargs)"),  # noqa: E501
    ("hivemind.averaging.averager.DecentralizedAverager.get_tensors", "(self)"),
    ("hivemind.averaging.averager.DecentralizedAverager.set_group_bits", "(self, group_bits, wait=True)"),
    ("hivemind.averaging.averager.DecentralizedAverager.load_state_from_peers", "(self, wait=True, timeout=None)"),
    ("hivemind.averaging.averager.DecentralizedAverager.get_current_state", "(self)"),
    ("hivemind.averaging.key_manager.GroupKeyManager.update_key_on_group_assembled", "(self, group_info)"),
    # LoadSafeStateAverager (state_averager.py)
    ("hivemind.optim.state_averager.TrainingStateAverager.__init__", "(self, *, dht, optimizer, params=None, scheduler=None, initialize_optimizer=None, offload_optimizer=False, custom_gradients=False, reuse_tensors=None, delta_rule_averaging=False, performance_ema_alpha=0.1, sync_epoch_when_averaging=False, parameter_names=None, average_opt_statistics=(), extra_tensors=(), status_loglevel=10, **kwargs)"),  # noqa: E501
    ("hivemind.optim.state_averager.TrainingStateAverager._update_scheduler", "(self)"),
    ("hivemind.optim.state_averager.TrainingStateAverager.step", "(self, wait_for_delayed_updates=None, apply_delayed_updates=True, increment_epoch=False, optimizer_step=False, zero_grad=False, delay_optimizer_step=False, averaging_round=False, delay_averaging=None, averaging_control=None, wait_for_trigger=None, grad_scaler=None, set_to_none=True, averaging_opts=None)"),  # noqa: E501
    ("hivemind.optim.state_averager.TrainingStateAverager.get_current_state", "(self)"),
    ("hivemind.optim.state_averager.TrainingStateAverager._apply_averaging_results_", "(self)"),
    ("hivemind.optim.state_averager.TrainingStateAverager.load_state_from_peers", "(self, **kwargs)"),
    # Blockwise8Bit (blockwise8bit.py), cancel_round (step_control.py)
    ("hivemind.compression.base.CompressionBase.compress", "(self, tensor, info, allow_inplace=False)"),
    ("hivemind.compression.base.CompressionBase.extract", "(self, serialized_tensor)"),
    ("hivemind.compression.base.CompressionBase.estimate_compression_ratio", "(self, info)"),
    ("hivemind.utils.mpfuture.MPFuture.cancel", "(self)"),
]

# Instance attributes we read, set or replace, as the class (or a hivemind base of it) assigns them.
ATTRIBUTES = [
    ("hivemind.optim.optimizer.Optimizer", "scheduled_grads scheduled_state average_state_every tracker grad_averager "
     "state_averager auxiliary client_mode matchmaking_time averaging_timeout allreduce_timeout load_state_timeout "
     "shutdown_timeout offload_optimizer status_loglevel next_chunk_timeout run_id batch_size_per_step dht"),
    ("hivemind.optim.progress_tracker.ProgressTracker", "training_progress_key lock_global_progress global_progress dht"),
    ("hivemind.averaging.partition.TensorPartReducer", "num_parts_received current_part_index current_part_future finished "
     "sender_failed_after accumulator current_part_accumulated_from denominator num_parts part_shapes num_senders"),
    ("hivemind.averaging.partition.TensorPartContainer", "failed_size total_size num_parts_by_peer prefetch compression"),
    ("hivemind.averaging.allreduce.AllReduceRunner", "tensor_part_reducer tensor_part_container sender_peer_ids "
     "banned_senders parts_for_local_averaging ordered_peer_ids modes reducer_timeout weight group_id peer_id"),
    ("hivemind.averaging.averager.DecentralizedAverager", "_p2p _running_groups _averaging_alpha _state_updated "
     "last_updated _matchmaking prefix"),
    ("hivemind.averaging.matchmaking.Matchmaking", "group_key_manager"),
    ("hivemind.optim.grad_averager.GradientAverager", "local_samples_accumulated"),
    ("hivemind.optim.state_averager.TrainingStateAverager", "lock_optimizer _old_tensors delta_rule_averaging local_epoch "
     "main_parameters"),
    ("hivemind.averaging.control.StepControl", "_trigger _cancel"),
]

# Properties we read.
PROPERTIES = [
    ("hivemind.optim.optimizer.Optimizer", "use_gradient_averaging local_epoch"),
    ("hivemind.optim.progress_tracker.ProgressTracker", "global_epoch estimated_next_update_time"),
    ("hivemind.averaging.averager.DecentralizedAverager", "state_sharing_priority peer_id"),
    ("hivemind.averaging.control.StepControl", "triggered stage scheduled_time"),
]

# Names that must exist (classes, enum members, module-level privates, class attributes).
NAMES = [
    "hivemind.compression.serialization._BASE_COMPRESSION_TYPES",
    "hivemind.p2p.servicer.ServicerBase._rpc_handlers",
    "hivemind.averaging.control.AveragingStage.LOOKING_FOR_GROUP",
    "hivemind.averaging.control.AveragingStage.FINISHED",
    "hivemind.averaging.allreduce.AveragingMode.AUX",
    "hivemind.averaging.allreduce.AllreduceException",
    "hivemind.averaging.partition.BannedException",
    "hivemind.averaging.averager.DecentralizedAverager.rpc_aggregate_part",
    "hivemind.proto.averaging_pb2.AVERAGED_PART",
    "hivemind.proto.runtime_pb2.UNIFORM_8BIT",
    "hivemind.utils.asyncio.as_aiter",
    "hivemind.utils.asyncio.azip",
    "hivemind.utils.asyncio.aiter_with_timeout",
    "hivemind.utils.asyncio.amap_in_executor",
    "hivemind.utils.asyncio.attach_event_on_finished",
]


def _resolve(path: str):  # type: ignore[no-untyped-def]
    """The object named by a dotted path: the longest importable module prefix, then attributes (read statically,
    so a property or a patched method is what the class holds, not what it returns)."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            obj = inspect.getattr_static(obj, name)
        return obj
    raise ImportError(path)


def _compact(function) -> str:  # type: ignore[no-untyped-def]
    """``inspect.signature`` without annotations: names, kinds and defaults (what an override or a call relies on)."""
    if isinstance(function, (staticmethod, classmethod)):
        function = function.__func__
    sig = inspect.signature(function)
    params = [p.replace(annotation=inspect.Parameter.empty) for p in sig.parameters.values()]
    return str(sig.replace(parameters=params, return_annotation=inspect.Signature.empty))


@functools.cache
def _assigned_attributes(cls: type) -> set[str]:
    """Every ``self.<name>`` the class and its hivemind bases assign anywhere in their source."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if not klass.__module__.startswith("hivemind"):
            continue
        tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        for node in ast.walk(tree):
            targets = node.targets if isinstance(node, ast.Assign) else (
                [node.target] if isinstance(node, (ast.AnnAssign, ast.AugAssign)) else [])
            while targets:
                target = targets.pop()
                if isinstance(target, (ast.Tuple, ast.List)):
                    targets.extend(target.elts)
                elif isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self":
                    names.add(target.attr)
    return names


def _source_signature(cls: type, method: str) -> str | None:
    """The parameters of ``method`` as written in the class's source (for a method hivenet replaces at import)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == method:
            return "(" + ", ".join(a.arg for a in node.args.args) + ")"
    return None


def test_the_pinned_version_is_installed():
    assert hivemind.__version__ == HIVEMIND_VERSION, (
        f"hivemind {hivemind.__version__} is installed; the pins below are of {HIVEMIND_VERSION}: check each private "
        "in node/swarm/hivemind_ext/PATCHES.md against the new version, then update the pins")


@pytest.mark.parametrize(("path", "expected"), SIGNATURES, ids=[p for p, _ in SIGNATURES])
def test_signature_of_a_relied_on_method_is_unchanged(path, expected):
    try:
        found = _compact(_resolve(path))
    except (ImportError, AttributeError) as e:
        pytest.fail(f"hivemind no longer has {path} ({e!r}); see node/swarm/hivemind_ext/PATCHES.md")
    assert found == expected, f"hivemind's {path} changed signature: {found} (pinned {expected})"


@pytest.mark.parametrize(("path", "names"), ATTRIBUTES, ids=[p for p, _ in ATTRIBUTES])
def test_relied_on_instance_attributes_are_still_assigned(path, names):
    assigned = _assigned_attributes(_resolve(path))
    missing = [name for name in names.split() if name not in assigned]
    assert not missing, f"hivemind's {path} no longer assigns {', '.join(missing)}; see PATCHES.md"


@pytest.mark.parametrize(("path", "names"), PROPERTIES, ids=[p for p, _ in PROPERTIES])
def test_relied_on_properties_still_exist(path, names):
    cls = _resolve(path)
    missing = [name for name in names.split() if not isinstance(inspect.getattr_static(cls, name, None), property)]
    assert not missing, f"hivemind's {path} no longer has the properties {', '.join(missing)}; see PATCHES.md"


@pytest.mark.parametrize("path", NAMES)
def test_relied_on_names_still_exist(path):
    try:
        _resolve(path)
    except (ImportError, AttributeError) as e:
        pytest.fail(f"hivemind no longer has {path} ({e!r}); see node/swarm/hivemind_ext/PATCHES.md")


def test_the_codec_registry_hivenet_patches_is_still_a_dict_with_the_8bit_entry():
    registry = _resolve("hivemind.compression.serialization._BASE_COMPRESSION_TYPES")
    assert isinstance(registry, dict) and "UNIFORM_8BIT" in registry, (
        "hivemind.compression.serialization._BASE_COMPRESSION_TYPES changed; Blockwise8Bit.install relies on it")


def test_step_control_cancel_as_hivemind_writes_it_still_takes_only_self():
    # hivenet replaces StepControl.cancel at import (step_control.install): read hivemind's own from its source
    from hivemind.averaging.control import StepControl

    assert _source_signature(StepControl, "cancel") == "(self)", "hivemind's StepControl.cancel changed; see PATCHES.md"


def test_a_changed_signature_would_be_reported_by_name():
    def replaced(self, sender_index, part_index, tensor_part):  # type: ignore[no-untyped-def]
        return None

    assert _compact(replaced) != dict(SIGNATURES)["hivemind.averaging.partition.TensorPartReducer.accumulate_part"]
    with pytest.raises(AttributeError):
        _resolve("hivemind.averaging.partition.TensorPartReducer.no_such_method")
