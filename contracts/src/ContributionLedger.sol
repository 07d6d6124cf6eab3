// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {RewardToken} from "./RewardToken.sol";

/**
 * @title ContributionLedger
 * @notice Settles hivenet rewards with one Merkle root per epoch.
 *
 * Each epoch validators post the root of a tree whose leaves are
 * `keccak256(bytes.concat(keccak256(abi.encode(account, cumulativeAmount))))` (the
 * OpenZeppelin StandardMerkleTree leaf for `(address, uint256)`), where `cumulativeAmount`
 * is everything `account` has earned up to that epoch, plus the sum of those amounts.
 * The first post of an epoch opens its (root, total); every other validator that computed
 * the same tuple posts it too, adding its vote. A root becomes final when anyone calls
 * {finalizeEpoch} after the challenge window, undisputed, with votes from at least
 * {quorum} validators that still hold the role, so no single key can settle a root where
 * the quorum is above one (a quorum of one is only meant for a one-validator deployment).
 * Epochs advance by exactly one, each epoch may raise the cumulative total by at most
 * {maxEpochIncrease}, and a final total never exceeds what was funded. Claims are checked
 * against the latest final root and pay the difference to what the account already
 * claimed, to anyone's transaction, and never more than was funded.
 *
 * The ledger creates its {RewardToken}. What each account claimed, and what the ledger
 * paid out in all, live in the token's per-account records next to the balances
 * ({RewardToken-settleClaim}), so a claim writes two slots (the claimant's and the pool's)
 * instead of four, and a peer's first claim makes one fresh slot instead of two.
 */
contract ContributionLedger is AccessControl, ReentrancyGuardTransient {
    using SafeERC20 for RewardToken;

    /// @notice Role allowed to post and dispute epoch roots.
    bytes32 public constant VALIDATOR_ROLE = keccak256("VALIDATOR_ROLE");

    struct EpochRecord {
        bytes32 root;
        uint128 cumulativeTotal;
        uint64 postedAt;
        bool disputed;
    }

    /// @notice The shortest challenge window a deployment accepts, in seconds.
    uint64 public constant MIN_CHALLENGE_WINDOW = 1;
    /// @notice Seconds between proposing a new quorum and applying it, so validators can react.
    uint64 public constant QUORUM_CHANGE_DELAY = 2 days;

    RewardToken private immutable _token;
    uint64 private immutable _challengeWindow;
    uint128 private immutable _maxEpochIncrease;

    // Validators that posted the epoch's current (root, total); cleared when a disputed epoch is re-posted.
    mapping(uint64 epoch => address[]) private _voters;
    uint32 private _quorum;
    uint32 private _pendingQuorum;
    uint64 private _pendingQuorumAt;

    mapping(uint64 epoch => EpochRecord) private _epochs;
    uint64 private _latestEpoch;
    uint64 private _finalizedEpoch;
    uint128 private _finalizedTotal;
    bytes32 private _finalizedRoot;
    // What fund() pulled in; claims only read it (the token keeps the total paid out).
    uint128 private _totalFunded;

    /// @notice Emitted after `funder` added `amount` tokens to the reward pool.
    event LedgerFunded(address indexed funder, uint256 amount, uint256 totalFunded);
    /// @notice Emitted after `validator` posted the root of `epoch`.
    event EpochPosted(uint64 indexed epoch, bytes32 root, uint256 cumulativeTotal, address indexed validator);
    /// @notice Emitted for every post of `epoch`'s (root, total), the opening one included; `votes` counts it.
    event EpochVoted(uint64 indexed epoch, bytes32 root, uint256 cumulativeTotal, address indexed validator, uint256 votes);
    /// @notice Emitted after the admin proposed quorum `quorum`, applicable from `applicableAt`.
    event QuorumChangeProposed(uint32 quorum, uint256 applicableAt);
    /// @notice Emitted after the quorum became `quorum`.
    event QuorumChanged(uint32 quorum);
    /// @notice Emitted after `validator` disputed the root of `epoch`.
    event EpochDisputed(uint64 indexed epoch, address indexed validator, bytes32 reason);
    /// @notice Emitted after the root of `epoch` became final.
    event EpochFinalized(uint64 indexed epoch, bytes32 root, uint256 cumulativeTotal);
    /// @notice Emitted after `payout` tokens were paid to `account`, whose claimed total is now `cumulativeAmount`.
    event RewardClaimed(address indexed account, address indexed relayer, uint256 payout, uint256 cumulativeAmount);

    /// @dev Epoch numbers start at 1.
    error ContributionLedgerInvalidEpoch(uint64 epoch);
    /// @dev A root must not be zero.
    error ContributionLedgerEmptyRoot();
    /// @dev `epoch` is not above the latest posted epoch and does not replace a disputed one.
    error ContributionLedgerEpochNotIncreasing(uint64 epoch, uint64 latestEpoch);
    /// @dev Cumulative totals never decrease below the last final total.
    error ContributionLedgerTotalDecreased(uint256 cumulativeTotal, uint256 finalizedTotal);
    /// @dev No root was posted for `epoch`.
    error ContributionLedgerUnknownEpoch(uint64 epoch);
    /// @dev The root of `epoch` was disputed and cannot become final.
    error ContributionLedgerEpochDisputed(uint64 epoch);
    /// @dev `epoch` is not after the latest final epoch.
    error ContributionLedgerEpochAlreadyFinal(uint64 epoch, uint64 finalizedEpoch);
    /// @dev The challenge window of `epoch` is open until `finalAt`.
    error ContributionLedgerChallengeWindowOpen(uint64 epoch, uint256 finalAt);
    /// @dev The challenge window of `epoch` closed at `finalAt`.
    error ContributionLedgerChallengeWindowClosed(uint64 epoch, uint256 finalAt);
    /// @dev No epoch is final yet.
    error ContributionLedgerNoFinalRoot();
    /// @dev The proof does not place `(account, cumulativeAmount)` under the final root.
    error ContributionLedgerInvalidProof(address account, uint256 cumulativeAmount);
    /// @dev `account` already claimed `claimed`, which is not below `cumulativeAmount`.
    error ContributionLedgerNothingToClaim(address account, uint256 cumulativeAmount, uint256 claimed);
    /// @dev Paying `payout` would exceed the funded pool; only `available` is left.
    error ContributionLedgerInsufficientFunds(uint256 payout, uint256 available);
    /// @dev `epoch` skips epochs: the next new one is `latestEpoch + 1`.
    error ContributionLedgerEpochSkipped(uint64 epoch, uint64 latestEpoch);
    /// @dev `epoch` is open with another (root, total); dispute it instead of posting a rival.
    error ContributionLedgerConflictingRoot(uint64 epoch, bytes32 root, uint256 cumulativeTotal);
    /// @dev `validator` already voted for the current root of `epoch`.
    error ContributionLedgerAlreadyVoted(uint64 epoch, address validator);
    /// @dev `cumulativeTotal` is above `limit`, the last final total plus the per-epoch cap for each epoch since.
    error ContributionLedgerEmissionCapExceeded(uint64 epoch, uint256 cumulativeTotal, uint256 limit);
    /// @dev `cumulativeTotal` is above the `funded` pool.
    error ContributionLedgerTotalExceedsFunding(uint256 cumulativeTotal, uint256 funded);
    /// @dev Only `votes` live validators voted for `epoch`'s root; `quorum` are needed.
    error ContributionLedgerQuorumNotReached(uint64 epoch, uint256 votes, uint256 quorum);
    /// @dev The challenge window must be at least `minimum` seconds.
    error ContributionLedgerWindowTooShort(uint64 challengeWindow, uint64 minimum);
    /// @dev The quorum and the per-epoch cap must be positive.
    error ContributionLedgerInvalidParameter();
    /// @dev No quorum change is proposed.
    error ContributionLedgerNoQuorumChange();
    /// @dev The proposed quorum change applies from `applicableAt`.
    error ContributionLedgerQuorumChangeNotDue(uint256 applicableAt);
    /// @dev Funding amounts must be positive.
    error ContributionLedgerZeroAmount();

    /**
     * @param tokenName ERC-20 name of the reward token this ledger creates.
     * @param tokenSymbol ERC-20 symbol of that token.
     * @param challengeWindow_ Seconds during which a posted root can be disputed.
     * @param admin Receives `DEFAULT_ADMIN_ROLE` here (grants `VALIDATOR_ROLE`) and in the
     * token, with its `MINTER_ROLE`.
     * @param quorum_ Distinct validators that must post an epoch's (root, total) before it can
     * become final; 1 only for a deployment with one validator.
     * @param maxEpochIncrease_ Most an epoch may raise the cumulative total by.
     */
    constructor(
        string memory tokenName,
        string memory tokenSymbol,
        uint64 challengeWindow_,
        address admin,
        uint32 quorum_,
        uint128 maxEpochIncrease_
    ) {
        if (challengeWindow_ < MIN_CHALLENGE_WINDOW) {
            revert ContributionLedgerWindowTooShort(challengeWindow_, MIN_CHALLENGE_WINDOW);
        }
        if (quorum_ == 0 || maxEpochIncrease_ == 0) revert ContributionLedgerInvalidParameter();
        _token = _createToken(tokenName, tokenSymbol, admin);
        _challengeWindow = challengeWindow_;
        _quorum = quorum_;
        _maxEpochIncrease = maxEpochIncrease_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    /**
     * @notice Proposes a new quorum (admin only); anyone may apply it after {QUORUM_CHANGE_DELAY}.
     */
    function proposeQuorum(uint32 quorum_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (quorum_ == 0) revert ContributionLedgerInvalidParameter();
        uint64 at = uint64(block.timestamp) + QUORUM_CHANGE_DELAY;
        _pendingQuorum = quorum_;
        _pendingQuorumAt = at;
        emit QuorumChangeProposed(quorum_, at);
    }

    /// @notice Applies the proposed quorum once its delay has passed.
    function applyQuorum() external {
        uint32 next = _pendingQuorum;
        if (next == 0) revert ContributionLedgerNoQuorumChange();
        if (block.timestamp < _pendingQuorumAt) revert ContributionLedgerQuorumChangeNotDue(_pendingQuorumAt);
        _quorum = next;
        _pendingQuorum = 0;
        _pendingQuorumAt = 0;
        emit QuorumChanged(next);
    }

    /**
     * @notice Pulls `amount` reward tokens from the caller into the pool (needs an allowance).
     */
    function fund(uint256 amount) external {
        if (amount == 0) revert ContributionLedgerZeroAmount();
        uint128 total = _totalFunded + SafeCast.toUint128(amount);
        _totalFunded = total;
        emit LedgerFunded(msg.sender, amount, total);
        _token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /**
     * @notice Posts, or votes for, the Merkle root of cumulative rewards for `epoch` (validators only).
     * @dev The first post of `epoch` (or the first after a dispute) opens its (root, total);
     * later posts must carry the same tuple and add one vote each. A new epoch is exactly
     * `latestEpoch + 1`.
     */
    function postEpoch(uint64 epoch, bytes32 root, uint256 cumulativeTotal) external onlyRole(VALIDATOR_ROLE) {
        if (epoch == 0) revert ContributionLedgerInvalidEpoch(epoch);
        if (root == bytes32(0)) revert ContributionLedgerEmptyRoot();
        if (epoch <= _finalizedEpoch) revert ContributionLedgerEpochAlreadyFinal(epoch, _finalizedEpoch);
        uint64 latest = _latestEpoch;
        if (epoch > latest && epoch - latest > 1) revert ContributionLedgerEpochSkipped(epoch, latest);
        _checkTotal(epoch, cumulativeTotal);
        EpochRecord storage record = _epochs[epoch];
        address[] storage list = _voters[epoch];
        if (record.postedAt == 0 || record.disputed) {
            if (record.disputed) delete _voters[epoch];
            record.root = root;
            record.cumulativeTotal = SafeCast.toUint128(cumulativeTotal);
            record.postedAt = uint64(block.timestamp);
            record.disputed = false;
            if (epoch > latest) _latestEpoch = epoch;
            emit EpochPosted(epoch, root, cumulativeTotal, msg.sender);
        } else {
            if (record.root != root || record.cumulativeTotal != cumulativeTotal) {
                revert ContributionLedgerConflictingRoot(epoch, record.root, record.cumulativeTotal);
            }
            uint256 n = list.length;
            for (uint256 i; i < n; ++i) {
                if (list[i] == msg.sender) revert ContributionLedgerAlreadyVoted(epoch, msg.sender);
            }
        }
        list.push(msg.sender);
        emit EpochVoted(epoch, root, cumulativeTotal, msg.sender, list.length);
    }

    /**
     * @notice Disputes the root of `epoch` during its challenge window (validators only).
     * @param reason A hash of the validator's evidence, kept in the event.
     */
    function disputeEpoch(uint64 epoch, bytes32 reason) external onlyRole(VALIDATOR_ROLE) {
        EpochRecord storage record = _epochs[epoch];
        if (record.postedAt == 0) revert ContributionLedgerUnknownEpoch(epoch);
        if (record.disputed) revert ContributionLedgerEpochDisputed(epoch);
        if (epoch <= _finalizedEpoch) revert ContributionLedgerEpochAlreadyFinal(epoch, _finalizedEpoch);
        uint256 finalAt = uint256(record.postedAt) + _challengeWindow;
        if (block.timestamp >= finalAt) revert ContributionLedgerChallengeWindowClosed(epoch, finalAt);
        record.disputed = true;
        emit EpochDisputed(epoch, msg.sender, reason);
    }

    /**
     * @notice Makes the root of `epoch` the one claims are checked against. Anyone may call
     * it once the challenge window passed without a dispute.
     */
    function finalizeEpoch(uint64 epoch) external {
        EpochRecord storage record = _epochs[epoch];
        if (record.postedAt == 0) revert ContributionLedgerUnknownEpoch(epoch);
        if (record.disputed) revert ContributionLedgerEpochDisputed(epoch);
        if (epoch <= _finalizedEpoch) revert ContributionLedgerEpochAlreadyFinal(epoch, _finalizedEpoch);
        uint256 finalAt = uint256(record.postedAt) + _challengeWindow;
        if (block.timestamp < finalAt) revert ContributionLedgerChallengeWindowOpen(epoch, finalAt);
        uint256 votes = liveVotes(epoch);
        if (votes < _quorum) revert ContributionLedgerQuorumNotReached(epoch, votes, _quorum);
        _checkTotal(epoch, record.cumulativeTotal);
        if (record.cumulativeTotal > _totalFunded) {
            revert ContributionLedgerTotalExceedsFunding(record.cumulativeTotal, _totalFunded);
        }
        _finalizedEpoch = epoch;
        _finalizedTotal = record.cumulativeTotal;
        _finalizedRoot = record.root;
        emit EpochFinalized(epoch, record.root, record.cumulativeTotal);
    }

    /**
     * @notice Pays `account` the difference between `cumulativeAmount` (proven against the
     * latest final root) and what it already claimed. Anyone may send it for the account.
     * @return payout The number of tokens transferred to `account`.
     */
    function claim(
        address account,
        uint256 cumulativeAmount,
        bytes32[] calldata proof
    ) external nonReentrant returns (uint256 payout) {
        bytes32 root = _finalizedRoot;
        if (root == bytes32(0)) revert ContributionLedgerNoFinalRoot();
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(account, cumulativeAmount))));
        if (!MerkleProof.verifyCalldata(proof, root, leaf)) {
            revert ContributionLedgerInvalidProof(account, cumulativeAmount);
        }
        (uint256 alreadyClaimed, uint256 paidOut) = _token.claimState(account);
        if (cumulativeAmount <= alreadyClaimed) {
            revert ContributionLedgerNothingToClaim(account, cumulativeAmount, alreadyClaimed);
        }
        payout = cumulativeAmount - alreadyClaimed;
        // paidOut <= _totalFunded: only this ledger settles claims, each within this bound.
        uint256 available = _totalFunded - paidOut;
        if (payout > available) revert ContributionLedgerInsufficientFunds(payout, available);
        _token.settleClaim(account, cumulativeAmount);
        emit RewardClaimed(account, msg.sender, payout, cumulativeAmount);
    }

    /**
     * @notice Votes for `epoch`'s current root from validators that still hold the role: a
     * revoked validator's votes no longer count.
     */
    function liveVotes(uint64 epoch) public view returns (uint256 votes) {
        address[] storage list = _voters[epoch];
        uint256 n = list.length;
        for (uint256 i; i < n; ++i) {
            if (hasRole(VALIDATOR_ROLE, list[i])) ++votes;
        }
    }

    /// @notice The validators that posted `epoch`'s current root (revoked ones included).
    function voters(uint64 epoch) external view returns (address[] memory) {
        return _voters[epoch];
    }

    /// @notice Live votes a root needs to become final.
    function quorum() external view returns (uint32) {
        return _quorum;
    }

    /// @notice The proposed quorum and when it applies (zeros if none).
    function pendingQuorum() external view returns (uint32 quorum_, uint64 applicableAt) {
        return (_pendingQuorum, _pendingQuorumAt);
    }

    /// @notice Most an epoch may raise the cumulative total by.
    function maxEpochIncrease() external view returns (uint256) {
        return _maxEpochIncrease;
    }

    /// @notice The reward token (created by this ledger).
    function token() external view returns (RewardToken) {
        return _token;
    }

    /// @notice Seconds during which a posted root can be disputed.
    function challengeWindow() external view returns (uint64) {
        return _challengeWindow;
    }

    /// @notice The posted record of `epoch` (all zero if none).
    function epochRecord(uint64 epoch) external view returns (EpochRecord memory) {
        return _epochs[epoch];
    }

    /// @notice The highest epoch posted so far (0 if none).
    function latestEpoch() external view returns (uint64) {
        return _latestEpoch;
    }

    /// @notice The latest final epoch, its root and cumulative total (zeros if none).
    function finalized() external view returns (uint64 epoch, bytes32 root, uint256 cumulativeTotal) {
        return (_finalizedEpoch, _finalizedRoot, _finalizedTotal);
    }

    /// @notice The cumulative amount `account` has claimed.
    function claimed(address account) external view returns (uint256) {
        return _token.claimedOf(account);
    }

    /// @notice Tokens ever funded into and claimed from the pool.
    function totals() external view returns (uint256 funded, uint256 claimedTotal) {
        return (_totalFunded, _token.claimedOf(address(this)));
    }

    /**
     * @dev A total for `epoch` must not fall below the last final total, nor rise above it by
     * more than the cap for each epoch since the last final one.
     */
    function _checkTotal(uint64 epoch, uint256 cumulativeTotal) private view {
        uint256 finalTotal = _finalizedTotal;
        if (cumulativeTotal < finalTotal) revert ContributionLedgerTotalDecreased(cumulativeTotal, finalTotal);
        uint256 limit = finalTotal + uint256(_maxEpochIncrease) * (epoch - _finalizedEpoch);
        if (cumulativeTotal > limit) revert ContributionLedgerEmissionCapExceeded(epoch, cumulativeTotal, limit);
    }

    /**
     * @dev Deploys the reward token with this ledger as the one that settles its claims.
     * Tests override it to use a token with receive hooks.
     */
    function _createToken(string memory name_, string memory symbol_, address admin)
        internal
        virtual
        returns (RewardToken)
    {
        return new RewardToken(name_, symbol_, admin, address(this));
    }
}
