// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {ShardRegistry} from "../src/ShardRegistry.sol";
import {TestBase} from "./utils/TestBase.sol";

/// @dev Signs ShardRegistry registrations the way a data contributor's wallet does.
abstract contract ShardSigning is TestBase {
    bytes32 internal constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");

    function registrationDigest(
        ShardRegistry registry,
        uint256 chainId,
        bytes32 root,
        address owner,
        string memory license,
        uint256 nonce,
        uint256 deadline
    ) internal view returns (bytes32) {
        bytes32 domain = keccak256(
            abi.encode(DOMAIN_TYPEHASH, keccak256("HivenetShardRegistry"), keccak256("1"), chainId, address(registry))
        );
        bytes32 structHash = keccak256(
            abi.encode(registry.REGISTER_SHARD_TYPEHASH(), root, owner, keccak256(bytes(license)), nonce, deadline)
        );
        return keccak256(abi.encodePacked("\x19\x01", domain, structHash));
    }

    function signRegistration(
        ShardRegistry registry,
        uint256 key,
        uint256 chainId,
        bytes32 root,
        string memory license,
        uint256 nonce,
        uint256 deadline
    ) internal view returns (bytes memory) {
        bytes32 digest = registrationDigest(registry, chainId, root, vm.addr(key), license, nonce, deadline);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }

    /// @dev The address the registry recovers from `sig` for the message it expects now.
    function recoveredNow(
        ShardRegistry registry,
        bytes memory sig,
        bytes32 root,
        address owner,
        string memory license,
        uint256 deadline
    ) internal view returns (address) {
        bytes32 digest = registrationDigest(
            registry, block.chainid, root, owner, license, registry.nonces(owner), deadline
        );
        bytes32 r;
        bytes32 s;
        uint8 v;
        assembly {
            r := mload(add(sig, 32))
            s := mload(add(sig, 64))
            v := byte(0, mload(add(sig, 96)))
        }
        return ecrecover(digest, v, r, s);
    }
}

contract ShardRegistryTest is ShardSigning {
    address internal admin = address(0xA11CE);
    address internal v1 = address(0x7A1);
    address internal v2 = address(0x7A2);
    address internal relayer = address(0xBEEF);
    uint256 internal ownerKey = 0xC0FFEE;
    address internal owner;
    bytes32 internal constant ROOT = keccak256("shard-1");
    ShardRegistry internal registry;

    function setUp() public {
        vm.warp(1_000_000);
        owner = vm.addr(ownerKey);
        registry = new ShardRegistry(2, admin);
        vm.startPrank(admin);
        registry.grantRole(registry.VALIDATOR_ROLE(), v1);
        registry.grantRole(registry.VALIDATOR_ROLE(), v2);
        vm.stopPrank();
    }

    function test_registerShard_byOwner() public {
        vm.prank(owner);
        registry.registerShard(ROOT, "CC-BY-4.0");
        ShardRegistry.Shard memory shard = registry.shardOf(ROOT);
        vm.assertEq(shard.owner, owner, "owner");
        vm.assertEq(keccak256(bytes(shard.license)), keccak256("CC-BY-4.0"), "license");
        vm.assertEq(uint256(shard.registeredAt), block.timestamp, "registeredAt");
    }

    function test_registerShard_reverts() public {
        vm.expectRevert(ShardRegistry.ShardRegistryEmptyRoot.selector);
        registry.registerShard(bytes32(0), "MIT");
        registry.registerShard(ROOT, "MIT");
        vm.expectRevert(abi.encodeWithSelector(ShardRegistry.ShardRegistryAlreadyRegistered.selector, ROOT));
        registry.registerShard(ROOT, "MIT");
    }

    function test_registerShardBySig_relayed() public {
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = signRegistration(registry, ownerKey, block.chainid, ROOT, "MIT", 0, deadline);
        vm.prank(relayer);
        registry.registerShardBySig(ROOT, owner, "MIT", deadline, sig);
        vm.assertEq(registry.shardOf(ROOT).owner, owner, "owner");
        vm.assertEq(registry.nonces(owner), 1, "nonce used");
    }

    function test_registerShardBySig_rejectsExpired() public {
        uint256 deadline = block.timestamp - 1;
        bytes memory sig = signRegistration(registry, ownerKey, block.chainid, ROOT, "MIT", 0, deadline);
        vm.expectRevert(abi.encodeWithSelector(ShardRegistry.ShardRegistryExpiredSignature.selector, deadline));
        registry.registerShardBySig(ROOT, owner, "MIT", deadline, sig);
    }

    function test_registerShardBySig_rejectsReplay() public {
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = signRegistration(registry, ownerKey, block.chainid, ROOT, "MIT", 0, deadline);
        registry.registerShardBySig(ROOT, owner, "MIT", deadline, sig);
        address recovered = recoveredNow(registry, sig, ROOT, owner, "MIT", deadline);
        vm.assertTrue(recovered != owner, "replay recovers someone else");
        vm.expectRevert(abi.encodeWithSelector(ShardRegistry.ShardRegistryInvalidSigner.selector, recovered, owner));
        registry.registerShardBySig(ROOT, owner, "MIT", deadline, sig);
    }

    function test_registerShardBySig_rejectsOtherChain() public {
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = signRegistration(registry, ownerKey, block.chainid + 1, ROOT, "MIT", 0, deadline);
        address recovered = recoveredNow(registry, sig, ROOT, owner, "MIT", deadline);
        vm.expectRevert(abi.encodeWithSelector(ShardRegistry.ShardRegistryInvalidSigner.selector, recovered, owner));
        registry.registerShardBySig(ROOT, owner, "MIT", deadline, sig);
    }

    function test_registerShardBySig_rejectsAlteredLicense() public {
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = signRegistration(registry, ownerKey, block.chainid, ROOT, "MIT", 0, deadline);
        address recovered = recoveredNow(registry, sig, ROOT, owner, "GPL-3.0", deadline);
        vm.expectRevert(abi.encodeWithSelector(ShardRegistry.ShardRegistryInvalidSigner.selector, recovered, owner));
        registry.registerShardBySig(ROOT, owner, "GPL-3.0", deadline, sig);
    }

    function test_attest_countsResults() public {
        registry.registerShard(ROOT, "MIT");
        vm.prank(v1);
        registry.attest(ROOT, true, 9_000, keccak256("report-1"));
        vm.prank(v2);
        registry.attest(ROOT, false, 1_000, keccak256("report-2"));
        ShardRegistry.Shard memory shard = registry.shardOf(ROOT);
        vm.assertEq(uint256(shard.passes), 1, "passes");
        vm.assertEq(uint256(shard.fails), 1, "fails");
        ShardRegistry.Attestation memory a = registry.attestationOf(ROOT, v1);
        vm.assertTrue(a.passed, "v1 passed");
        vm.assertEq(uint256(a.score), 9_000, "score");
        vm.assertEq(a.reportHash, keccak256("report-1"), "report");
    }

    function test_attest_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(ShardRegistry.ShardRegistryUnknownShard.selector, ROOT));
        vm.prank(v1);
        registry.attest(ROOT, true, 1, bytes32(0));
        registry.registerShard(ROOT, "MIT");
        vm.expectRevert(abi.encodeWithSelector(ShardRegistry.ShardRegistryInvalidScore.selector, 10_001));
        vm.prank(v1);
        registry.attest(ROOT, true, 10_001, bytes32(0));
        vm.prank(v1);
        registry.attest(ROOT, true, 1, bytes32(0));
        vm.expectRevert(abi.encodeWithSelector(ShardRegistry.ShardRegistryAlreadyAttested.selector, ROOT, v1));
        vm.prank(v1);
        registry.attest(ROOT, true, 1, bytes32(0));
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, owner, registry.VALIDATOR_ROLE())
        );
        vm.prank(owner);
        registry.attest(ROOT, true, 1, bytes32(0));
    }

    function test_revoke_byOwner() public {
        vm.prank(owner);
        registry.registerShard(ROOT, "MIT");
        vm.expectRevert(abi.encodeWithSelector(ShardRegistry.ShardRegistryNotOwner.selector, relayer, owner));
        vm.prank(relayer);
        registry.revoke(ROOT);
        vm.prank(owner);
        registry.revoke(ROOT);
        vm.assertTrue(registry.shardOf(ROOT).revoked, "revoked");
        vm.expectRevert(abi.encodeWithSelector(ShardRegistry.ShardRegistryShardRevoked.selector, ROOT));
        vm.prank(v1);
        registry.attest(ROOT, true, 1, bytes32(0));
    }

    function test_voteRevoke_byQuorum() public {
        registry.registerShard(ROOT, "MIT");
        vm.assertEq(uint256(registry.revokeQuorum()), 2, "quorum");
        vm.prank(v1);
        registry.voteRevoke(ROOT, keccak256("pii"));
        vm.assertFalse(registry.shardOf(ROOT).revoked, "one vote is not enough");
        vm.expectRevert(abi.encodeWithSelector(ShardRegistry.ShardRegistryAlreadyVoted.selector, ROOT, v1));
        vm.prank(v1);
        registry.voteRevoke(ROOT, keccak256("pii"));
        vm.prank(v2);
        registry.voteRevoke(ROOT, keccak256("pii"));
        vm.assertTrue(registry.shardOf(ROOT).revoked, "quorum revokes");
    }

    function testFuzz_signatureBoundToChainAndNonce(uint256 key, uint64 otherChain, bytes32 root) public {
        key = bound(key, 1, 2 ** 200);
        vm.assume(root != bytes32(0) && otherChain != block.chainid);
        address signer = vm.addr(key);
        uint256 deadline = block.timestamp + 1;
        bytes memory foreign = signRegistration(registry, key, otherChain, root, "MIT", 0, deadline);
        address recovered = recoveredNow(registry, foreign, root, signer, "MIT", deadline);
        vm.expectRevert(abi.encodeWithSelector(ShardRegistry.ShardRegistryInvalidSigner.selector, recovered, signer));
        registry.registerShardBySig(root, signer, "MIT", deadline, foreign);

        bytes memory sig = signRegistration(registry, key, block.chainid, root, "MIT", 0, deadline);
        registry.registerShardBySig(root, signer, "MIT", deadline, sig);
        vm.assertEq(registry.shardOf(root).owner, signer, "registered once");
        recovered = recoveredNow(registry, sig, root, signer, "MIT", deadline);
        vm.expectRevert(abi.encodeWithSelector(ShardRegistry.ShardRegistryInvalidSigner.selector, recovered, signer));
        registry.registerShardBySig(root, signer, "MIT", deadline, sig);
    }
}
