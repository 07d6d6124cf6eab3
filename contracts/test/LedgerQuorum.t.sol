// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {ContributionLedger} from "../src/ContributionLedger.sol";
import {RewardToken} from "../src/RewardToken.sol";
import {TestBase} from "./utils/TestBase.sol";

/// @dev Attacks on settlement by single validator keys; each must fail with a quorum of two of three.
contract LedgerQuorumTest is TestBase {
    uint64 internal constant WINDOW = 1 hours;
    uint128 internal constant CAP = 100 ether;
    address internal admin = address(0xA11CE);
    address internal v1 = address(0x7A1);
    address internal v2 = address(0x7A2);
    address internal v3 = address(0x7A3);
    address internal thief = address(0xBAD);

    RewardToken internal token;
    ContributionLedger internal ledger;

    event EpochVoted(uint64 indexed epoch, bytes32 root, uint256 cumulativeTotal, address indexed validator, uint256 votes);

    function setUp() public {
        vm.warp(1_000_000);
        ledger = new ContributionLedger("Hive", "HIVE", WINDOW, admin, 2, CAP);
        token = ledger.token();
        vm.startPrank(admin);
        ledger.grantRole(ledger.VALIDATOR_ROLE(), v1);
        ledger.grantRole(ledger.VALIDATOR_ROLE(), v2);
        ledger.grantRole(ledger.VALIDATOR_ROLE(), v3);
        token.mint(admin, 1_000 ether);
        token.approve(address(ledger), type(uint256).max);
        ledger.fund(1_000 ether);
        vm.stopPrank();
    }

    function _post(address validator, uint64 epoch, bytes32 root, uint256 total) internal {
        vm.prank(validator);
        ledger.postEpoch(epoch, root, total);
    }

    function _theftRoot() internal view returns (bytes32[] memory leaves) {
        leaves = new bytes32[](2);
        leaves[0] = rewardLeaf(thief, 100 ether);
        leaves[1] = rewardLeaf(address(0xB0B), 0);
    }

    function test_oneKeyCannotFinalizeARoot() public {
        bytes32[] memory leaves = _theftRoot();
        _post(v1, 1, merkleRoot(leaves), 100 ether);
        vm.warp(block.timestamp + 10 * WINDOW);
        vm.expectRevert(
            abi.encodeWithSelector(ContributionLedger.ContributionLedgerQuorumNotReached.selector, 1, 1, 2)
        );
        ledger.finalizeEpoch(1);
        vm.expectRevert(ContributionLedger.ContributionLedgerNoFinalRoot.selector);
        ledger.claim(thief, 100 ether, merkleProof(leaves, 0));
        vm.assertEq(token.balanceOf(thief), 0, "thief unpaid");
    }

    function test_oneKeyCannotVoteTwice() public {
        _post(v1, 1, bytes32(uint256(7)), 50);
        vm.expectRevert(abi.encodeWithSelector(ContributionLedger.ContributionLedgerAlreadyVoted.selector, 1, v1));
        _post(v1, 1, bytes32(uint256(7)), 50);
        vm.assertEq(ledger.liveVotes(1), 1, "one vote");
    }

    function test_quorumOfMatchingPostsFinalizes() public {
        bytes32[] memory leaves = _theftRoot();
        _post(v1, 1, merkleRoot(leaves), 100 ether);
        vm.expectEmit();
        emit EpochVoted(1, merkleRoot(leaves), 100 ether, v2, 2);
        _post(v2, 1, merkleRoot(leaves), 100 ether);
        vm.warp(block.timestamp + WINDOW);
        ledger.finalizeEpoch(1);
        ledger.claim(thief, 100 ether, merkleProof(leaves, 0));
        vm.assertEq(token.balanceOf(thief), 100 ether, "paid the quorum's root");
        address[] memory voters = ledger.voters(1);
        vm.assertEq(voters.length, 2, "two voters");
    }

    function test_rivalRootCannotJoinAnOpenEpoch() public {
        _post(v1, 1, bytes32(uint256(7)), 50);
        vm.expectRevert(
            abi.encodeWithSelector(ContributionLedger.ContributionLedgerConflictingRoot.selector, 1, bytes32(uint256(7)), 50)
        );
        _post(v2, 1, bytes32(uint256(8)), 50);
        vm.expectRevert(
            abi.encodeWithSelector(ContributionLedger.ContributionLedgerConflictingRoot.selector, 1, bytes32(uint256(7)), 50)
        );
        _post(v2, 1, bytes32(uint256(7)), 51);
    }

    function test_revokedValidatorVotesAreVoid() public {
        _post(v1, 1, bytes32(uint256(7)), 50);
        _post(v2, 1, bytes32(uint256(7)), 50);
        vm.startPrank(admin);
        ledger.revokeRole(ledger.VALIDATOR_ROLE(), v2);
        vm.stopPrank();
        vm.warp(block.timestamp + WINDOW);
        vm.expectRevert(
            abi.encodeWithSelector(ContributionLedger.ContributionLedgerQuorumNotReached.selector, 1, 1, 2)
        );
        ledger.finalizeEpoch(1);
        _post(v3, 1, bytes32(uint256(7)), 50);
        ledger.finalizeEpoch(1);
        (uint64 epoch,, uint256 total) = ledger.finalized();
        vm.assertEq(uint256(epoch), 1, "final epoch");
        vm.assertEq(total, 50, "final total");
    }

    function test_capBoundsEachEpochIncrease() public {
        vm.expectRevert(
            abi.encodeWithSelector(ContributionLedger.ContributionLedgerEmissionCapExceeded.selector, 1, CAP + 1, CAP)
        );
        _post(v1, 1, bytes32(uint256(7)), CAP + 1);
        _post(v1, 1, bytes32(uint256(7)), CAP);
        // Epoch 2 before epoch 1 is final: two epochs of cap above the last final total (zero).
        vm.expectRevert(
            abi.encodeWithSelector(ContributionLedger.ContributionLedgerEmissionCapExceeded.selector, 2, 2 * CAP + 1, 2 * CAP)
        );
        _post(v1, 2, bytes32(uint256(8)), 2 * CAP + 1);
        _post(v2, 1, bytes32(uint256(7)), CAP);
        vm.warp(block.timestamp + WINDOW);
        ledger.finalizeEpoch(1);
        // Now one epoch of cap above the final total CAP.
        vm.expectRevert(
            abi.encodeWithSelector(ContributionLedger.ContributionLedgerEmissionCapExceeded.selector, 2, 2 * CAP + 1, 2 * CAP)
        );
        _post(v1, 2, bytes32(uint256(8)), 2 * CAP + 1);
        _post(v1, 2, bytes32(uint256(8)), 2 * CAP);
    }

    function test_finalizingAnOlderEpochRechecksTheCapOfLaterOnes() public {
        _post(v1, 1, bytes32(uint256(7)), 0);
        _post(v1, 2, bytes32(uint256(8)), 2 * CAP);
        _post(v2, 2, bytes32(uint256(8)), 2 * CAP);
        _post(v2, 1, bytes32(uint256(7)), 0);
        vm.warp(block.timestamp + WINDOW);
        ledger.finalizeEpoch(1);
        vm.expectRevert(
            abi.encodeWithSelector(ContributionLedger.ContributionLedgerEmissionCapExceeded.selector, 2, 2 * CAP, CAP)
        );
        ledger.finalizeEpoch(2);
    }

    function test_totalAbovePoolNeverFinalizes() public {
        ContributionLedger big = new ContributionLedger("Hive", "HIVE", WINDOW, admin, 2, type(uint128).max);
        vm.startPrank(admin);
        big.grantRole(big.VALIDATOR_ROLE(), v1);
        big.grantRole(big.VALIDATOR_ROLE(), v2);
        big.token().mint(admin, 10 ether);
        big.token().approve(address(big), type(uint256).max);
        big.fund(10 ether);
        vm.stopPrank();
        vm.prank(v1);
        big.postEpoch(1, bytes32(uint256(7)), 11 ether);
        vm.prank(v2);
        big.postEpoch(1, bytes32(uint256(7)), 11 ether);
        vm.warp(block.timestamp + WINDOW);
        vm.expectRevert(
            abi.encodeWithSelector(ContributionLedger.ContributionLedgerTotalExceedsFunding.selector, 11 ether, 10 ether)
        );
        big.finalizeEpoch(1);
    }

    function test_farFutureEpochReverts() public {
        vm.expectRevert(
            abi.encodeWithSelector(ContributionLedger.ContributionLedgerEpochSkipped.selector, type(uint64).max, 0)
        );
        _post(v1, type(uint64).max, bytes32(uint256(7)), 1);
        vm.expectRevert(abi.encodeWithSelector(ContributionLedger.ContributionLedgerEpochSkipped.selector, 2, 0));
        _post(v1, 2, bytes32(uint256(7)), 1);
        _post(v1, 1, bytes32(uint256(7)), 1);
        vm.assertEq(uint256(ledger.latestEpoch()), 1, "latest is the honest next epoch");
    }

    function test_zeroChallengeWindowReverts() public {
        vm.expectRevert(
            abi.encodeWithSelector(ContributionLedger.ContributionLedgerWindowTooShort.selector, 0, ledger.MIN_CHALLENGE_WINDOW())
        );
        new ContributionLedger("Hive", "HIVE", 0, admin, 2, CAP);
        vm.expectRevert(ContributionLedger.ContributionLedgerInvalidParameter.selector);
        new ContributionLedger("Hive", "HIVE", WINDOW, admin, 0, CAP);
        vm.expectRevert(ContributionLedger.ContributionLedgerInvalidParameter.selector);
        new ContributionLedger("Hive", "HIVE", WINDOW, admin, 2, 0);
    }

    function test_quorumChangesOnlyByAdminAfterDelay() public {
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, v1, ledger.DEFAULT_ADMIN_ROLE())
        );
        vm.prank(v1);
        ledger.proposeQuorum(1);
        vm.expectRevert(ContributionLedger.ContributionLedgerNoQuorumChange.selector);
        ledger.applyQuorum();

        vm.prank(admin);
        ledger.proposeQuorum(1);
        uint256 at = block.timestamp + ledger.QUORUM_CHANGE_DELAY();
        vm.expectRevert(abi.encodeWithSelector(ContributionLedger.ContributionLedgerQuorumChangeNotDue.selector, at));
        ledger.applyQuorum();
        vm.assertEq(uint256(ledger.quorum()), 2, "unchanged before the delay");
        vm.warp(at);
        ledger.applyQuorum();
        vm.assertEq(uint256(ledger.quorum()), 1, "changed after the delay");
    }

    function test_disputedEpochReopensWithFreshVotes() public {
        _post(v1, 1, bytes32(uint256(7)), 50);
        vm.prank(v3);
        ledger.disputeEpoch(1, keccak256("cannot reproduce"));
        _post(v2, 1, bytes32(uint256(9)), 60);
        vm.assertEq(ledger.liveVotes(1), 1, "old votes cleared");
        vm.warp(block.timestamp + WINDOW);
        vm.expectRevert(
            abi.encodeWithSelector(ContributionLedger.ContributionLedgerQuorumNotReached.selector, 1, 1, 2)
        );
        ledger.finalizeEpoch(1);
        _post(v3, 1, bytes32(uint256(9)), 60);
        vm.warp(block.timestamp + WINDOW);
        ledger.finalizeEpoch(1);
        (, bytes32 root,) = ledger.finalized();
        vm.assertEq(root, bytes32(uint256(9)), "re-posted root final");
    }
}

/// @dev Three validators with a quorum of two vote honest or rival roots, dispute, lose and regain
/// their role, and finalize at random; the handler keeps its own record of who voted for what.
contract QuorumHandler is TestBase {
    uint64 internal constant WINDOW = 100;
    uint32 public constant QUORUM = 2;

    ContributionLedger public ledger;
    address[3] public validators;
    uint64 public epoch = 1;
    // Handler's record of the current tuple of `epoch` and its voters.
    bytes32 internal openRoot;
    uint256 internal openTotal;
    bool[3] internal voted;
    uint256 public finalizedWithoutQuorum;
    uint256 public finalizations;

    constructor() {
        ledger = new ContributionLedger("Q", "Q", WINDOW, address(this), QUORUM, 1_000 ether);
        for (uint256 i; i < 3; ++i) {
            validators[i] = address(uint160(0x7A0 + i));
            ledger.grantRole(ledger.VALIDATOR_ROLE(), validators[i]);
        }
        RewardToken token = ledger.token();
        token.mint(address(this), 1_000_000 ether);
        token.approve(address(ledger), type(uint256).max);
        ledger.fund(1_000_000 ether);
    }

    function vote(uint256 who, uint256 rootSeed, uint256 total) external {
        uint256 i = who % 3;
        bytes32 root = bytes32(bound(rootSeed, 1, 3));
        total = bound(total, 0, 3_000 ether);
        vm.prank(validators[i]);
        try ledger.postEpoch(epoch, root, total) {
            if (openRoot == bytes32(0)) {
                (openRoot, openTotal) = (root, total);
            }
            voted[i] = true;
        } catch {}
    }

    function dispute(uint256 who) external {
        vm.prank(validators[who % 3]);
        try ledger.disputeEpoch(epoch, bytes32(0)) {
            openRoot = bytes32(0);
            voted = [false, false, false];
        } catch {}
    }

    function toggleRole(uint256 who) external {
        address v = validators[who % 3];
        if (ledger.hasRole(ledger.VALIDATOR_ROLE(), v)) ledger.revokeRole(ledger.VALIDATOR_ROLE(), v);
        else ledger.grantRole(ledger.VALIDATOR_ROLE(), v);
    }

    function finalize(uint256 wait) external {
        vm.warp(block.timestamp + bound(wait, 0, 2 * WINDOW));
        try ledger.finalizeEpoch(epoch) {
            uint256 live;
            for (uint256 i; i < 3; ++i) {
                if (voted[i] && ledger.hasRole(ledger.VALIDATOR_ROLE(), validators[i])) ++live;
            }
            if (live < QUORUM) finalizedWithoutQuorum += 1;
            finalizations += 1;
            epoch += 1;
            openRoot = bytes32(0);
            voted = [false, false, false];
        } catch {}
    }
}

contract QuorumInvariantTest is TestBase {
    QuorumHandler internal handler;

    function setUp() public {
        vm.warp(1_000_000);
        handler = new QuorumHandler();
    }

    function targetContracts() public view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(handler);
    }

    /// @dev The handler's random path does finalize roots, so the invariant is not vacuous.
    function test_handlerCanFinalize() public {
        handler.vote(0, 1, 5 ether);
        handler.vote(1, 1, 5 ether);
        handler.finalize(200);
        vm.assertEq(handler.finalizations(), 1, "finalized with two votes");
    }

    function invariant_everyFinalRootHadAQuorum() public view {
        vm.assertEq(handler.finalizedWithoutQuorum(), 0, "no root final without a live quorum");
        (uint64 finalEpoch,, uint256 total) = handler.ledger().finalized();
        vm.assertEq(uint256(finalEpoch), handler.finalizations(), "one final epoch per finalization");
        (uint256 funded,) = handler.ledger().totals();
        vm.assertLe(total, funded, "final total <= funded");
    }
}
