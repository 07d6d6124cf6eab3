// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

/**
 * @title NodeRegistry
 * @notice Nodes stake reward tokens and bind their Ethereum address to their p2p identity.
 *
 * The p2p identity is an Ed25519 key (its libp2p peer id is derived from it). To prove
 * possession, the peer key signs the EIP-712 digest {bindingDigest}, which binds the
 * account, the key, the chain id and this contract. The EVM has no Ed25519 precompile, so
 * the signature is published in {BindingRequested} and a validator confirms the binding
 * after checking it off chain; until then the key is not bound. Stake leaves through an
 * unbonding delay, and validators can slash a bounded fraction with a recorded reason.
 */
contract NodeRegistry is AccessControl, EIP712 {
    using SafeERC20 for IERC20;

    /// @notice Role allowed to confirm bindings and slash.
    bytes32 public constant VALIDATOR_ROLE = keccak256("VALIDATOR_ROLE");
    /// @notice EIP-712 type of the proof of possession signed by the peer key.
    bytes32 public constant PEER_BINDING_TYPEHASH = keccak256("PeerBinding(address account,bytes32 peerKey)");
    /// @notice Basis points in one whole.
    uint16 public constant BPS = 10_000;

    struct Node {
        uint128 stake;
        uint128 unbonding;
        uint64 unbondingReleaseAt;
        bool bound;
        bytes32 peerKey;
    }

    IERC20 private immutable _token;
    uint256 private immutable _minStake;
    uint64 private immutable _unbondingDelay;
    uint16 private immutable _maxSlashBps;
    address private immutable _treasury;

    mapping(address account => Node) private _nodes;
    mapping(bytes32 peerKey => address account) private _peerOwners;

    /// @notice Emitted after `account` added `amount` to its stake.
    event Staked(address indexed account, uint256 amount, uint256 stake);
    /// @notice Emitted after `account` asked to bind `peerKey`, with the peer key's signature over `digest`.
    event BindingRequested(address indexed account, bytes32 indexed peerKey, bytes32 digest, bytes signature);
    /// @notice Emitted after `validator` confirmed that `account` holds `peerKey`.
    event PeerBound(address indexed account, bytes32 indexed peerKey, address indexed validator);
    /// @notice Emitted after `account` moved `amount` from stake to unbonding, released at `releaseAt`.
    event UnbondRequested(address indexed account, uint256 amount, uint256 releaseAt);
    /// @notice Emitted after `account` withdrew `amount` of unbonded stake.
    event Withdrawn(address indexed account, uint256 amount);
    /// @notice Emitted after `validator` slashed `amount` (`bps` basis points) from `account` for `reason`.
    event Slashed(address indexed account, address indexed validator, uint256 amount, uint16 bps, bytes32 reason);

    /// @dev Amounts must be positive.
    error NodeRegistryZeroAmount();
    /// @dev `account` has `stake`, less than the `required` amount.
    error NodeRegistryInsufficientStake(address account, uint256 stake, uint256 required);
    /// @dev A proof of possession is a 64-byte Ed25519 signature; `length` bytes were given.
    error NodeRegistryInvalidSignatureLength(uint256 length);
    /// @dev `peerKey` is already bound to `owner`.
    error NodeRegistryPeerKeyTaken(bytes32 peerKey, address owner);
    /// @dev `account` already has a bound peer key.
    error NodeRegistryAlreadyBound(address account);
    /// @dev `account` has no binding waiting for confirmation.
    error NodeRegistryNoPendingBinding(address account);
    /// @dev Nothing unbonded to withdraw for `account`.
    error NodeRegistryNothingToWithdraw(address account);
    /// @dev Unbonded stake is locked until `releaseAt`.
    error NodeRegistryUnbondingLocked(uint256 releaseAt);
    /// @dev A slash takes 1 to `maxBps` basis points; `bps` was asked.
    error NodeRegistrySlashOutOfBounds(uint16 bps, uint16 maxBps);
    /// @dev `account` has nothing at stake to slash.
    error NodeRegistryNothingToSlash(address account);

    /**
     * @param token_ The staked token.
     * @param minStake_ Stake needed before a binding can be requested.
     * @param unbondingDelay_ Seconds between {requestUnbond} and {withdraw}.
     * @param maxSlashBps_ Upper bound of one slash, in basis points of the node's stake.
     * @param treasury_ Receives slashed tokens.
     * @param admin Receives `DEFAULT_ADMIN_ROLE` (grants `VALIDATOR_ROLE`).
     */
    constructor(
        IERC20 token_,
        uint256 minStake_,
        uint64 unbondingDelay_,
        uint16 maxSlashBps_,
        address treasury_,
        address admin
    ) EIP712("HivenetNodeRegistry", "1") {
        _token = token_;
        _minStake = minStake_;
        _unbondingDelay = unbondingDelay_;
        _maxSlashBps = maxSlashBps_ > BPS ? BPS : maxSlashBps_;
        _treasury = treasury_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    /// @notice Pulls `amount` tokens from the caller into its stake (needs an allowance).
    function stake(uint256 amount) external {
        if (amount == 0) revert NodeRegistryZeroAmount();
        Node storage node = _nodes[msg.sender];
        uint128 newStake = node.stake + SafeCast.toUint128(amount);
        node.stake = newStake;
        emit Staked(msg.sender, amount, newStake);
        _token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /**
     * @notice Asks to bind the caller to the Ed25519 `peerKey`, with `signature` made by that
     * key over {bindingDigest}. A validator confirms it after checking the signature.
     */
    function requestBinding(bytes32 peerKey, bytes calldata signature) external {
        Node storage node = _nodes[msg.sender];
        if (node.bound) revert NodeRegistryAlreadyBound(msg.sender);
        if (node.stake < _minStake) revert NodeRegistryInsufficientStake(msg.sender, node.stake, _minStake);
        if (signature.length != 64) revert NodeRegistryInvalidSignatureLength(signature.length);
        address owner = _peerOwners[peerKey];
        if (owner != address(0)) revert NodeRegistryPeerKeyTaken(peerKey, owner);
        node.peerKey = peerKey;
        emit BindingRequested(msg.sender, peerKey, bindingDigest(msg.sender, peerKey), signature);
    }

    /// @notice Confirms the pending binding of `account` after its proof was checked (validators only).
    function confirmBinding(address account) external onlyRole(VALIDATOR_ROLE) {
        Node storage node = _nodes[account];
        bytes32 peerKey = node.peerKey;
        if (node.bound) revert NodeRegistryAlreadyBound(account);
        if (peerKey == bytes32(0)) revert NodeRegistryNoPendingBinding(account);
        address owner = _peerOwners[peerKey];
        if (owner != address(0)) revert NodeRegistryPeerKeyTaken(peerKey, owner);
        node.bound = true;
        _peerOwners[peerKey] = account;
        emit PeerBound(account, peerKey, msg.sender);
    }

    /// @notice Moves `amount` of the caller's stake into unbonding; it can be withdrawn after the delay.
    function requestUnbond(uint256 amount) external {
        if (amount == 0) revert NodeRegistryZeroAmount();
        Node storage node = _nodes[msg.sender];
        if (node.stake < amount) revert NodeRegistryInsufficientStake(msg.sender, node.stake, amount);
        uint64 releaseAt = uint64(block.timestamp) + _unbondingDelay;
        node.stake -= uint128(amount);
        node.unbonding += uint128(amount);
        node.unbondingReleaseAt = releaseAt;
        emit UnbondRequested(msg.sender, amount, releaseAt);
    }

    /// @notice Pays the caller its unbonded stake once the unbonding delay passed.
    function withdraw() external {
        Node storage node = _nodes[msg.sender];
        uint256 amount = node.unbonding;
        if (amount == 0) revert NodeRegistryNothingToWithdraw(msg.sender);
        if (block.timestamp < node.unbondingReleaseAt) revert NodeRegistryUnbondingLocked(node.unbondingReleaseAt);
        node.unbonding = 0;
        emit Withdrawn(msg.sender, amount);
        _token.safeTransfer(msg.sender, amount);
    }

    /**
     * @notice Takes `bps` basis points of `account`'s stake and unbonding stake to the treasury
     * (validators only), recording `reason` (a hash of the evidence).
     */
    function slash(address account, uint16 bps, bytes32 reason) external onlyRole(VALIDATOR_ROLE) {
        if (bps == 0 || bps > _maxSlashBps) revert NodeRegistrySlashOutOfBounds(bps, _maxSlashBps);
        Node storage node = _nodes[account];
        uint256 fromStake = (uint256(node.stake) * bps) / BPS;
        uint256 fromUnbonding = (uint256(node.unbonding) * bps) / BPS;
        uint256 amount = fromStake + fromUnbonding;
        if (amount == 0) revert NodeRegistryNothingToSlash(account);
        node.stake -= uint128(fromStake);
        node.unbonding -= uint128(fromUnbonding);
        emit Slashed(account, msg.sender, amount, bps, reason);
        _token.safeTransfer(_treasury, amount);
    }

    /// @notice The EIP-712 digest the peer key signs to bind itself to `account` on this chain and contract.
    function bindingDigest(address account, bytes32 peerKey) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(PEER_BINDING_TYPEHASH, account, peerKey)));
    }

    /// @notice The registry entry of `account`.
    function nodeOf(address account) external view returns (Node memory) {
        return _nodes[account];
    }

    /// @notice The account bound to `peerKey` (zero if none).
    function peerOwner(bytes32 peerKey) external view returns (address) {
        return _peerOwners[peerKey];
    }

    /// @notice Registry parameters: staked token, minimum stake, unbonding delay, slash bound, treasury.
    function parameters()
        external
        view
        returns (IERC20 token, uint256 minStake, uint64 unbondingDelay, uint16 maxSlashBps, address treasury)
    {
        return (_token, _minStake, _unbondingDelay, _maxSlashBps, _treasury);
    }
}
