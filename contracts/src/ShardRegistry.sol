// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";

/**
 * @title ShardRegistry
 * @notice Registers data shards by content id (their Merkle root), owner and license, and
 * records validators' vetting attestations.
 *
 * A data contributor needs no gas: it signs an EIP-712 `RegisterShard` message (bound to
 * the chain id, this contract, a nonce and a deadline) and a relayer submits it with
 * {registerShardBySig}. A shard is revoked by its owner or by a quorum of validators.
 */
contract ShardRegistry is AccessControl, EIP712, Nonces {
    /// @notice Role allowed to attest vetting results and vote on revocation.
    bytes32 public constant VALIDATOR_ROLE = keccak256("VALIDATOR_ROLE");
    /// @notice EIP-712 type of a signed shard registration.
    bytes32 public constant REGISTER_SHARD_TYPEHASH =
        keccak256("RegisterShard(bytes32 root,address owner,string license,uint256 nonce,uint256 deadline)");
    /// @notice Highest vetting score (basis points).
    uint16 public constant MAX_SCORE = 10_000;

    struct Shard {
        address owner;
        uint64 registeredAt;
        bool revoked;
        uint16 passes;
        uint16 fails;
        uint16 revokeVotes;
        string license;
    }

    struct Attestation {
        bool attested;
        bool passed;
        uint16 score;
        bytes32 reportHash;
    }

    uint16 private immutable _revokeQuorum;

    mapping(bytes32 root => Shard) private _shards;
    mapping(bytes32 root => mapping(address validator => Attestation)) private _attestations;
    mapping(bytes32 root => mapping(address validator => bool)) private _revokeVoted;

    /// @notice Emitted after the shard `root` was registered for `owner` under `license`.
    event ShardRegistered(bytes32 indexed root, address indexed owner, string license, address relayer);
    /// @notice Emitted after `validator` attested the vetting result of `root`.
    event ShardAttested(
        bytes32 indexed root,
        address indexed validator,
        bool passed,
        uint16 score,
        bytes32 reportHash
    );
    /// @notice Emitted after `validator` voted to revoke `root` for `reason`.
    event RevocationVoted(bytes32 indexed root, address indexed validator, bytes32 reason, uint16 votes);
    /// @notice Emitted after `root` was revoked, by its owner or by a validator quorum.
    event ShardRevoked(bytes32 indexed root, address indexed by, bool byQuorum);

    /// @dev A shard root must not be zero.
    error ShardRegistryEmptyRoot();
    /// @dev `root` is registered already.
    error ShardRegistryAlreadyRegistered(bytes32 root);
    /// @dev `root` is not registered.
    error ShardRegistryUnknownShard(bytes32 root);
    /// @dev `root` was revoked.
    error ShardRegistryShardRevoked(bytes32 root);
    /// @dev The signed registration expired at `deadline`.
    error ShardRegistryExpiredSignature(uint256 deadline);
    /// @dev The registration was signed by `signer`, not by `owner` (wrong key, chain, contract, nonce or data).
    error ShardRegistryInvalidSigner(address signer, address owner);
    /// @dev `score` exceeds {MAX_SCORE}.
    error ShardRegistryInvalidScore(uint16 score);
    /// @dev `validator` already attested `root`.
    error ShardRegistryAlreadyAttested(bytes32 root, address validator);
    /// @dev `validator` already voted to revoke `root`.
    error ShardRegistryAlreadyVoted(bytes32 root, address validator);
    /// @dev Only the owner `owner` may do this; `caller` is not it.
    error ShardRegistryNotOwner(address caller, address owner);

    /**
     * @param revokeQuorum_ Validator votes needed to revoke a shard.
     * @param admin Receives `DEFAULT_ADMIN_ROLE` (grants `VALIDATOR_ROLE`).
     */
    constructor(uint16 revokeQuorum_, address admin) EIP712("HivenetShardRegistry", "1") {
        _revokeQuorum = revokeQuorum_ == 0 ? 1 : revokeQuorum_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    /// @notice Registers shard `root` owned by the caller under `license` (an SPDX identifier).
    function registerShard(bytes32 root, string calldata license) external {
        _register(root, msg.sender, license);
    }

    /**
     * @notice Registers shard `root` for `owner`, who signed the EIP-712 `RegisterShard`
     * message with its current nonce; anyone may submit it before `deadline`.
     */
    function registerShardBySig(
        bytes32 root,
        address owner,
        string calldata license,
        uint256 deadline,
        bytes calldata signature
    ) external {
        if (block.timestamp > deadline) revert ShardRegistryExpiredSignature(deadline);
        bytes32 structHash = keccak256(
            abi.encode(REGISTER_SHARD_TYPEHASH, root, owner, keccak256(bytes(license)), _useNonce(owner), deadline)
        );
        address signer = ECDSA.recover(_hashTypedDataV4(structHash), signature);
        if (signer != owner) revert ShardRegistryInvalidSigner(signer, owner);
        _register(root, owner, license);
    }

    /**
     * @notice Records the caller's vetting result for `root` (validators only): pass or fail,
     * a score in basis points and the hash of the full report.
     */
    function attest(bytes32 root, bool passed, uint16 score, bytes32 reportHash) external onlyRole(VALIDATOR_ROLE) {
        Shard storage shard = _requireActive(root);
        if (score > MAX_SCORE) revert ShardRegistryInvalidScore(score);
        Attestation storage attestation = _attestations[root][msg.sender];
        if (attestation.attested) revert ShardRegistryAlreadyAttested(root, msg.sender);
        _attestations[root][msg.sender] = Attestation(true, passed, score, reportHash);
        if (passed) {
            shard.passes += 1;
        } else {
            shard.fails += 1;
        }
        emit ShardAttested(root, msg.sender, passed, score, reportHash);
    }

    /// @notice Revokes `root`; only its owner may call this.
    function revoke(bytes32 root) external {
        Shard storage shard = _requireActive(root);
        if (msg.sender != shard.owner) revert ShardRegistryNotOwner(msg.sender, shard.owner);
        shard.revoked = true;
        emit ShardRevoked(root, msg.sender, false);
    }

    /// @notice Votes to revoke `root` (validators only); the vote that reaches the quorum revokes it.
    function voteRevoke(bytes32 root, bytes32 reason) external onlyRole(VALIDATOR_ROLE) {
        Shard storage shard = _requireActive(root);
        if (_revokeVoted[root][msg.sender]) revert ShardRegistryAlreadyVoted(root, msg.sender);
        _revokeVoted[root][msg.sender] = true;
        uint16 votes = shard.revokeVotes + 1;
        shard.revokeVotes = votes;
        emit RevocationVoted(root, msg.sender, reason, votes);
        if (votes >= _revokeQuorum) {
            shard.revoked = true;
            emit ShardRevoked(root, msg.sender, true);
        }
    }

    /// @notice The registry entry of `root` (owner zero if unknown).
    function shardOf(bytes32 root) external view returns (Shard memory) {
        return _shards[root];
    }

    /// @notice The attestation `validator` made for `root`.
    function attestationOf(bytes32 root, address validator) external view returns (Attestation memory) {
        return _attestations[root][validator];
    }

    /// @notice Validator votes needed to revoke a shard.
    function revokeQuorum() external view returns (uint16) {
        return _revokeQuorum;
    }

    function _register(bytes32 root, address owner, string calldata license) private {
        if (root == bytes32(0)) revert ShardRegistryEmptyRoot();
        Shard storage shard = _shards[root];
        if (shard.owner != address(0)) revert ShardRegistryAlreadyRegistered(root);
        shard.owner = owner;
        shard.registeredAt = uint64(block.timestamp);
        shard.license = license;
        emit ShardRegistered(root, owner, license, msg.sender);
    }

    function _requireActive(bytes32 root) private view returns (Shard storage shard) {
        shard = _shards[root];
        if (shard.owner == address(0)) revert ShardRegistryUnknownShard(root);
        if (shard.revoked) revert ShardRegistryShardRevoked(root);
    }
}
