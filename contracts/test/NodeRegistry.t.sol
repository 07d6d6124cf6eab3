// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {NodeRegistry} from "../src/NodeRegistry.sol";
import {RewardToken} from "../src/RewardToken.sol";
import {TestBase} from "./utils/TestBase.sol";

contract NodeRegistryTest is TestBase {
    uint256 internal constant MIN_STAKE = 100 ether;
    uint64 internal constant DELAY = 7 days;
    uint16 internal constant MAX_SLASH = 1_000;
    address internal admin = address(0xA11CE);
    address internal validator = address(0x7A1);
    address internal treasury = address(0x7EA);
    address internal alice = address(0xA1);
    address internal bob = address(0xB0B);
    bytes32 internal constant PEER = bytes32(uint256(0xED25519));
    bytes internal sig64 = new bytes(64);

    RewardToken internal token;
    NodeRegistry internal registry;

    function setUp() public {
        vm.warp(1_000_000);
        token = new RewardToken("Hive", "HIVE", admin, address(0));
        registry = new NodeRegistry(IERC20(address(token)), MIN_STAKE, DELAY, MAX_SLASH, treasury, admin);
        vm.startPrank(admin);
        registry.grantRole(registry.VALIDATOR_ROLE(), validator);
        token.mint(alice, 1_000 ether);
        token.mint(bob, 1_000 ether);
        vm.stopPrank();
        vm.prank(alice);
        token.approve(address(registry), type(uint256).max);
        vm.prank(bob);
        token.approve(address(registry), type(uint256).max);
    }

    function _stake(address who, uint256 amount) internal {
        vm.prank(who);
        registry.stake(amount);
    }

    function test_stake_movesTokens() public {
        _stake(alice, 150 ether);
        vm.assertEq(uint256(registry.nodeOf(alice).stake), 150 ether, "stake");
        vm.assertEq(token.balanceOf(address(registry)), 150 ether, "registry balance");
    }

    function test_stake_revertsOnZero() public {
        vm.expectRevert(NodeRegistry.NodeRegistryZeroAmount.selector);
        _stake(alice, 0);
    }

    function test_binding_requestThenConfirm() public {
        _stake(alice, MIN_STAKE);
        vm.prank(alice);
        registry.requestBinding(PEER, sig64);
        vm.assertFalse(registry.nodeOf(alice).bound, "pending");
        vm.assertEq(registry.peerOwner(PEER), address(0), "not owned yet");
        vm.prank(validator);
        registry.confirmBinding(alice);
        vm.assertTrue(registry.nodeOf(alice).bound, "bound");
        vm.assertEq(registry.peerOwner(PEER), alice, "owner");
    }

    function test_bindingDigest_bindsChainAndContract() public {
        bytes32 digest = registry.bindingDigest(alice, PEER);
        vm.chainId(999);
        vm.assertTrue(registry.bindingDigest(alice, PEER) != digest, "chain id is bound");
        vm.assertTrue(registry.bindingDigest(bob, PEER) != registry.bindingDigest(alice, PEER), "account is bound");
    }

    function test_requestBinding_reverts() public {
        vm.expectRevert(
            abi.encodeWithSelector(NodeRegistry.NodeRegistryInsufficientStake.selector, alice, 0, MIN_STAKE)
        );
        vm.prank(alice);
        registry.requestBinding(PEER, sig64);

        _stake(alice, MIN_STAKE);
        vm.expectRevert(abi.encodeWithSelector(NodeRegistry.NodeRegistryInvalidSignatureLength.selector, 65));
        vm.prank(alice);
        registry.requestBinding(PEER, new bytes(65));

        vm.prank(alice);
        registry.requestBinding(PEER, sig64);
        vm.prank(validator);
        registry.confirmBinding(alice);
        vm.expectRevert(abi.encodeWithSelector(NodeRegistry.NodeRegistryAlreadyBound.selector, alice));
        vm.prank(alice);
        registry.requestBinding(PEER, sig64);

        _stake(bob, MIN_STAKE);
        vm.expectRevert(abi.encodeWithSelector(NodeRegistry.NodeRegistryPeerKeyTaken.selector, PEER, alice));
        vm.prank(bob);
        registry.requestBinding(PEER, sig64);
    }

    function test_confirmBinding_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(NodeRegistry.NodeRegistryNoPendingBinding.selector, alice));
        vm.prank(validator);
        registry.confirmBinding(alice);

        _stake(alice, MIN_STAKE);
        _stake(bob, MIN_STAKE);
        vm.prank(alice);
        registry.requestBinding(PEER, sig64);
        vm.prank(bob);
        registry.requestBinding(PEER, sig64);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, bob, registry.VALIDATOR_ROLE())
        );
        vm.prank(bob);
        registry.confirmBinding(bob);
        vm.prank(validator);
        registry.confirmBinding(alice);
        vm.expectRevert(abi.encodeWithSelector(NodeRegistry.NodeRegistryPeerKeyTaken.selector, PEER, alice));
        vm.prank(validator);
        registry.confirmBinding(bob);
        vm.expectRevert(abi.encodeWithSelector(NodeRegistry.NodeRegistryAlreadyBound.selector, alice));
        vm.prank(validator);
        registry.confirmBinding(alice);
    }

    function test_unbondAndWithdrawAfterDelay() public {
        _stake(alice, 200 ether);
        vm.prank(alice);
        registry.requestUnbond(50 ether);
        NodeRegistry.Node memory node = registry.nodeOf(alice);
        vm.assertEq(uint256(node.stake), 150 ether, "stake");
        vm.assertEq(uint256(node.unbonding), 50 ether, "unbonding");
        uint256 releaseAt = block.timestamp + DELAY;
        vm.expectRevert(abi.encodeWithSelector(NodeRegistry.NodeRegistryUnbondingLocked.selector, releaseAt));
        vm.prank(alice);
        registry.withdraw();
        vm.warp(releaseAt);
        uint256 before = token.balanceOf(alice);
        vm.prank(alice);
        registry.withdraw();
        vm.assertEq(token.balanceOf(alice) - before, 50 ether, "withdrawn");
        vm.expectRevert(abi.encodeWithSelector(NodeRegistry.NodeRegistryNothingToWithdraw.selector, alice));
        vm.prank(alice);
        registry.withdraw();
    }

    function test_requestUnbond_reverts() public {
        vm.expectRevert(NodeRegistry.NodeRegistryZeroAmount.selector);
        vm.prank(alice);
        registry.requestUnbond(0);
        _stake(alice, 10 ether);
        vm.expectRevert(
            abi.encodeWithSelector(NodeRegistry.NodeRegistryInsufficientStake.selector, alice, 10 ether, 11 ether)
        );
        vm.prank(alice);
        registry.requestUnbond(11 ether);
    }

    function test_slash_takesBoundedFractionToTreasury() public {
        _stake(alice, 200 ether);
        vm.prank(alice);
        registry.requestUnbond(100 ether);
        vm.prank(validator);
        registry.slash(alice, MAX_SLASH, keccak256("bad receipts"));
        NodeRegistry.Node memory node = registry.nodeOf(alice);
        vm.assertEq(uint256(node.stake), 90 ether, "stake slashed 10%");
        vm.assertEq(uint256(node.unbonding), 90 ether, "unbonding slashed 10%");
        vm.assertEq(token.balanceOf(treasury), 20 ether, "treasury");
    }

    function test_slash_reverts() public {
        _stake(alice, 200 ether);
        vm.expectRevert(
            abi.encodeWithSelector(NodeRegistry.NodeRegistrySlashOutOfBounds.selector, MAX_SLASH + 1, MAX_SLASH)
        );
        vm.prank(validator);
        registry.slash(alice, MAX_SLASH + 1, bytes32(0));
        vm.expectRevert(abi.encodeWithSelector(NodeRegistry.NodeRegistrySlashOutOfBounds.selector, 0, MAX_SLASH));
        vm.prank(validator);
        registry.slash(alice, 0, bytes32(0));
        vm.expectRevert(abi.encodeWithSelector(NodeRegistry.NodeRegistryNothingToSlash.selector, bob));
        vm.prank(validator);
        registry.slash(bob, 1, bytes32(0));
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, bob, registry.VALIDATOR_ROLE())
        );
        vm.prank(bob);
        registry.slash(alice, 1, bytes32(0));
    }

    function test_parameters() public view {
        (IERC20 t, uint256 minStake, uint64 delay, uint16 maxBps, address treasury_) = registry.parameters();
        vm.assertEq(address(t), address(token), "token");
        vm.assertEq(minStake, MIN_STAKE, "min stake");
        vm.assertEq(uint256(delay), DELAY, "delay");
        vm.assertEq(uint256(maxBps), MAX_SLASH, "max slash");
        vm.assertEq(treasury_, treasury, "treasury");
    }

    function testFuzz_slashNeverExceedsBound(uint128 staked, uint16 bps) public {
        uint256 amount = bound(staked, 1, 1_000 ether);
        uint16 share = uint16(bound(bps, 1, MAX_SLASH));
        _stake(alice, amount);
        uint256 expected = (amount * share) / 10_000;
        vm.assume(expected > 0);
        vm.prank(validator);
        registry.slash(alice, share, bytes32(0));
        vm.assertEq(token.balanceOf(treasury), expected, "slashed amount");
        vm.assertLe(token.balanceOf(treasury) * 10_000, amount * MAX_SLASH, "within bound");
        vm.assertEq(uint256(registry.nodeOf(alice).stake), amount - expected, "stake left");
    }
}
