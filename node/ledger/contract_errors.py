"""One Python exception per Solidity custom error of the hivenet contracts.

Generated from the ABIs in ``node/ledger/artifacts`` (``tests/ledger/test_revert_decoding.py``
checks that every ABI error has its class here and vice versa). Catch them by name, e.g.
``except ContributionLedgerInvalidProof as exc: exc.fields["cumulativeAmount"]``.
"""

from __future__ import annotations

from protocol.errors import ContractRevert


class AccessControlBadConfirmation(ContractRevert):
    """``AccessControlBadConfirmation()``"""


class AccessControlUnauthorizedAccount(ContractRevert):
    """``AccessControlUnauthorizedAccount(address account, bytes32 neededRole)``: The sending account lacks the role; ask the contract admin to grant it."""


class ContributionLedgerAlreadyVoted(ContractRevert):
    """``ContributionLedgerAlreadyVoted(uint64 epoch, address validator)``: This validator already voted for the epoch's current root."""


class ContributionLedgerChallengeWindowClosed(ContractRevert):
    """``ContributionLedgerChallengeWindowClosed(uint64 epoch, uint256 finalAt)``: The window to dispute this epoch has passed."""


class ContributionLedgerChallengeWindowOpen(ContractRevert):
    """``ContributionLedgerChallengeWindowOpen(uint64 epoch, uint256 finalAt)``: Wait until finalAt (a block timestamp) and finalize again."""


class ContributionLedgerConflictingRoot(ContractRevert):
    """``ContributionLedgerConflictingRoot(uint64 epoch, bytes32 root, uint256 cumulativeTotal)``: The epoch is open with another root; compare it and dispute it if it is wrong."""


class ContributionLedgerEmissionCapExceeded(ContractRevert):
    """``ContributionLedgerEmissionCapExceeded(uint64 epoch, uint256 cumulativeTotal, uint256 limit)``: The total rises faster than the deployment's per-epoch cap allows."""


class ContributionLedgerEmptyRoot(ContractRevert):
    """``ContributionLedgerEmptyRoot()``"""


class ContributionLedgerEpochAlreadyFinal(ContractRevert):
    """``ContributionLedgerEpochAlreadyFinal(uint64 epoch, uint64 finalizedEpoch)``"""


class ContributionLedgerEpochDisputed(ContractRevert):
    """``ContributionLedgerEpochDisputed(uint64 epoch)``"""


class ContributionLedgerEpochNotIncreasing(ContractRevert):
    """``ContributionLedgerEpochNotIncreasing(uint64 epoch, uint64 latestEpoch)``: Post a higher epoch number (or re-post only a disputed one)."""


class ContributionLedgerEpochSkipped(ContractRevert):
    """``ContributionLedgerEpochSkipped(uint64 epoch, uint64 latestEpoch)``: Post latestEpoch + 1: epochs advance by exactly one."""


class ContributionLedgerInsufficientFunds(ContractRevert):
    """``ContributionLedgerInsufficientFunds(uint256 payout, uint256 available)``: The reward pool is underfunded; a funder must call fund() first."""


class ContributionLedgerInvalidEpoch(ContractRevert):
    """``ContributionLedgerInvalidEpoch(uint64 epoch)``"""


class ContributionLedgerInvalidParameter(ContractRevert):
    """``ContributionLedgerInvalidParameter()``"""


class ContributionLedgerInvalidProof(ContractRevert):
    """``ContributionLedgerInvalidProof(address account, uint256 cumulativeAmount)``: The proof or amount does not match the latest final root; fetch the rewards file of that epoch."""


class ContributionLedgerNoFinalRoot(ContractRevert):
    """``ContributionLedgerNoFinalRoot()``: No epoch is final yet; wait for the challenge window and finalize."""


class ContributionLedgerNoQuorumChange(ContractRevert):
    """``ContributionLedgerNoQuorumChange()``"""


class ContributionLedgerNothingToClaim(ContractRevert):
    """``ContributionLedgerNothingToClaim(address account, uint256 cumulativeAmount, uint256 claimed)``: Everything up to this cumulative amount was claimed already."""


class ContributionLedgerQuorumChangeNotDue(ContractRevert):
    """``ContributionLedgerQuorumChangeNotDue(uint256 applicableAt)``: Apply the quorum change after applicableAt (a block timestamp)."""


class ContributionLedgerQuorumNotReached(ContractRevert):
    """``ContributionLedgerQuorumNotReached(uint64 epoch, uint256 votes, uint256 quorum)``: Too few live validators posted this root; wait for their posts."""


class ContributionLedgerTotalDecreased(ContractRevert):
    """``ContributionLedgerTotalDecreased(uint256 cumulativeTotal, uint256 finalizedTotal)``"""


class ContributionLedgerTotalExceedsFunding(ContractRevert):
    """``ContributionLedgerTotalExceedsFunding(uint256 cumulativeTotal, uint256 funded)``: The root's total is above the funded pool; a funder must call fund() first."""


class ContributionLedgerUnknownEpoch(ContractRevert):
    """``ContributionLedgerUnknownEpoch(uint64 epoch)``"""


class ContributionLedgerWindowTooShort(ContractRevert):
    """``ContributionLedgerWindowTooShort(uint64 challengeWindow, uint64 minimum)``: Deploy with a longer challenge window."""


class ContributionLedgerZeroAmount(ContractRevert):
    """``ContributionLedgerZeroAmount()``"""


class ECDSAInvalidSignature(ContractRevert):
    """``ECDSAInvalidSignature()``"""


class ECDSAInvalidSignatureLength(ContractRevert):
    """``ECDSAInvalidSignatureLength(uint256 length)``"""


class ECDSAInvalidSignatureS(ContractRevert):
    """``ECDSAInvalidSignatureS(bytes32 s)``"""


class ERC20InsufficientAllowance(ContractRevert):
    """``ERC20InsufficientAllowance(address spender, uint256 allowance, uint256 needed)``: Approve the contract to spend the tokens first."""


class ERC20InsufficientBalance(ContractRevert):
    """``ERC20InsufficientBalance(address sender, uint256 balance, uint256 needed)``: The account holds fewer tokens than needed."""


class ERC20InvalidApprover(ContractRevert):
    """``ERC20InvalidApprover(address approver)``"""


class ERC20InvalidReceiver(ContractRevert):
    """``ERC20InvalidReceiver(address receiver)``"""


class ERC20InvalidSender(ContractRevert):
    """``ERC20InvalidSender(address sender)``"""


class ERC20InvalidSpender(ContractRevert):
    """``ERC20InvalidSpender(address spender)``"""


class InvalidAccountNonce(ContractRevert):
    """``InvalidAccountNonce(address account, uint256 currentNonce)``"""


class InvalidShortString(ContractRevert):
    """``InvalidShortString()``"""


class NodeRegistryAlreadyBound(ContractRevert):
    """``NodeRegistryAlreadyBound(address account)``"""


class NodeRegistryInsufficientStake(ContractRevert):
    """``NodeRegistryInsufficientStake(address account, uint256 stake, uint256 required)``: Stake more tokens first."""


class NodeRegistryInvalidSignatureLength(ContractRevert):
    """``NodeRegistryInvalidSignatureLength(uint256 length)``"""


class NodeRegistryNoPendingBinding(ContractRevert):
    """``NodeRegistryNoPendingBinding(address account)``"""


class NodeRegistryNothingToSlash(ContractRevert):
    """``NodeRegistryNothingToSlash(address account)``"""


class NodeRegistryNothingToWithdraw(ContractRevert):
    """``NodeRegistryNothingToWithdraw(address account)``"""


class NodeRegistryPeerKeyTaken(ContractRevert):
    """``NodeRegistryPeerKeyTaken(bytes32 peerKey, address owner)``"""


class NodeRegistrySlashOutOfBounds(ContractRevert):
    """``NodeRegistrySlashOutOfBounds(uint16 bps, uint16 maxBps)``"""


class NodeRegistryUnbondingLocked(ContractRevert):
    """``NodeRegistryUnbondingLocked(uint256 releaseAt)``: Wait until releaseAt (a block timestamp)."""


class NodeRegistryZeroAmount(ContractRevert):
    """``NodeRegistryZeroAmount()``"""


class ReentrancyGuardReentrantCall(ContractRevert):
    """``ReentrancyGuardReentrantCall()``"""


class RewardTokenClaimNotIncreasing(ContractRevert):
    """``RewardTokenClaimNotIncreasing(address account, uint256 cumulativeAmount, uint256 claimed)``"""


class RewardTokenSupplyCapExceeded(ContractRevert):
    """``RewardTokenSupplyCapExceeded(uint256 amount, uint256 mintable)``: The supply is capped at 2**128 - 1; mint at most mintable."""


class RewardTokenUnauthorizedLedger(ContractRevert):
    """``RewardTokenUnauthorizedLedger(address caller)``: Only the ledger that created the token settles its claims."""


class SafeCastOverflowedUintDowncast(ContractRevert):
    """``SafeCastOverflowedUintDowncast(uint8 bits, uint256 value)``"""


class SafeERC20FailedOperation(ContractRevert):
    """``SafeERC20FailedOperation(address token)``"""


class ShardRegistryAlreadyAttested(ContractRevert):
    """``ShardRegistryAlreadyAttested(bytes32 root, address validator)``"""


class ShardRegistryAlreadyRegistered(ContractRevert):
    """``ShardRegistryAlreadyRegistered(bytes32 root)``"""


class ShardRegistryAlreadyVoted(ContractRevert):
    """``ShardRegistryAlreadyVoted(bytes32 root, address validator)``"""


class ShardRegistryEmptyRoot(ContractRevert):
    """``ShardRegistryEmptyRoot()``"""


class ShardRegistryExpiredSignature(ContractRevert):
    """``ShardRegistryExpiredSignature(uint256 deadline)``: Ask the owner to sign again with a later deadline."""


class ShardRegistryInvalidScore(ContractRevert):
    """``ShardRegistryInvalidScore(uint16 score)``"""


class ShardRegistryInvalidSigner(ContractRevert):
    """``ShardRegistryInvalidSigner(address signer, address owner)``: The signature is for another owner, chain, contract, nonce or data; sign again with the current nonce."""


class ShardRegistryNotOwner(ContractRevert):
    """``ShardRegistryNotOwner(address caller, address owner)``"""


class ShardRegistryShardRevoked(ContractRevert):
    """``ShardRegistryShardRevoked(bytes32 root)``"""


class ShardRegistryUnknownShard(ContractRevert):
    """``ShardRegistryUnknownShard(bytes32 root)``"""


class StringTooLong(ContractRevert):
    """``StringTooLong(string str)``"""


BY_NAME: dict[str, type[ContractRevert]] = {
    "AccessControlBadConfirmation": AccessControlBadConfirmation,
    "AccessControlUnauthorizedAccount": AccessControlUnauthorizedAccount,
    "ContributionLedgerAlreadyVoted": ContributionLedgerAlreadyVoted,
    "ContributionLedgerChallengeWindowClosed": ContributionLedgerChallengeWindowClosed,
    "ContributionLedgerChallengeWindowOpen": ContributionLedgerChallengeWindowOpen,
    "ContributionLedgerConflictingRoot": ContributionLedgerConflictingRoot,
    "ContributionLedgerEmissionCapExceeded": ContributionLedgerEmissionCapExceeded,
    "ContributionLedgerEmptyRoot": ContributionLedgerEmptyRoot,
    "ContributionLedgerEpochAlreadyFinal": ContributionLedgerEpochAlreadyFinal,
    "ContributionLedgerEpochDisputed": ContributionLedgerEpochDisputed,
    "ContributionLedgerEpochNotIncreasing": ContributionLedgerEpochNotIncreasing,
    "ContributionLedgerEpochSkipped": ContributionLedgerEpochSkipped,
    "ContributionLedgerInsufficientFunds": ContributionLedgerInsufficientFunds,
    "ContributionLedgerInvalidEpoch": ContributionLedgerInvalidEpoch,
    "ContributionLedgerInvalidParameter": ContributionLedgerInvalidParameter,
    "ContributionLedgerInvalidProof": ContributionLedgerInvalidProof,
    "ContributionLedgerNoFinalRoot": ContributionLedgerNoFinalRoot,
    "ContributionLedgerNoQuorumChange": ContributionLedgerNoQuorumChange,
    "ContributionLedgerNothingToClaim": ContributionLedgerNothingToClaim,
    "ContributionLedgerQuorumChangeNotDue": ContributionLedgerQuorumChangeNotDue,
    "ContributionLedgerQuorumNotReached": ContributionLedgerQuorumNotReached,
    "ContributionLedgerTotalDecreased": ContributionLedgerTotalDecreased,
    "ContributionLedgerTotalExceedsFunding": ContributionLedgerTotalExceedsFunding,
    "ContributionLedgerUnknownEpoch": ContributionLedgerUnknownEpoch,
    "ContributionLedgerWindowTooShort": ContributionLedgerWindowTooShort,
    "ContributionLedgerZeroAmount": ContributionLedgerZeroAmount,
    "ECDSAInvalidSignature": ECDSAInvalidSignature,
    "ECDSAInvalidSignatureLength": ECDSAInvalidSignatureLength,
    "ECDSAInvalidSignatureS": ECDSAInvalidSignatureS,
    "ERC20InsufficientAllowance": ERC20InsufficientAllowance,
    "ERC20InsufficientBalance": ERC20InsufficientBalance,
    "ERC20InvalidApprover": ERC20InvalidApprover,
    "ERC20InvalidReceiver": ERC20InvalidReceiver,
    "ERC20InvalidSender": ERC20InvalidSender,
    "ERC20InvalidSpender": ERC20InvalidSpender,
    "InvalidAccountNonce": InvalidAccountNonce,
    "InvalidShortString": InvalidShortString,
    "NodeRegistryAlreadyBound": NodeRegistryAlreadyBound,
    "NodeRegistryInsufficientStake": NodeRegistryInsufficientStake,
    "NodeRegistryInvalidSignatureLength": NodeRegistryInvalidSignatureLength,
    "NodeRegistryNoPendingBinding": NodeRegistryNoPendingBinding,
    "NodeRegistryNothingToSlash": NodeRegistryNothingToSlash,
    "NodeRegistryNothingToWithdraw": NodeRegistryNothingToWithdraw,
    "NodeRegistryPeerKeyTaken": NodeRegistryPeerKeyTaken,
    "NodeRegistrySlashOutOfBounds": NodeRegistrySlashOutOfBounds,
    "NodeRegistryUnbondingLocked": NodeRegistryUnbondingLocked,
    "NodeRegistryZeroAmount": NodeRegistryZeroAmount,
    "ReentrancyGuardReentrantCall": ReentrancyGuardReentrantCall,
    "RewardTokenClaimNotIncreasing": RewardTokenClaimNotIncreasing,
    "RewardTokenSupplyCapExceeded": RewardTokenSupplyCapExceeded,
    "RewardTokenUnauthorizedLedger": RewardTokenUnauthorizedLedger,
    "SafeCastOverflowedUintDowncast": SafeCastOverflowedUintDowncast,
    "SafeERC20FailedOperation": SafeERC20FailedOperation,
    "ShardRegistryAlreadyAttested": ShardRegistryAlreadyAttested,
    "ShardRegistryAlreadyRegistered": ShardRegistryAlreadyRegistered,
    "ShardRegistryAlreadyVoted": ShardRegistryAlreadyVoted,
    "ShardRegistryEmptyRoot": ShardRegistryEmptyRoot,
    "ShardRegistryExpiredSignature": ShardRegistryExpiredSignature,
    "ShardRegistryInvalidScore": ShardRegistryInvalidScore,
    "ShardRegistryInvalidSigner": ShardRegistryInvalidSigner,
    "ShardRegistryNotOwner": ShardRegistryNotOwner,
    "ShardRegistryShardRevoked": ShardRegistryShardRevoked,
    "ShardRegistryUnknownShard": ShardRegistryUnknownShard,
    "StringTooLong": StringTooLong,
}
