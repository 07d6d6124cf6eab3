// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {ContributionLedger} from "../src/ContributionLedger.sol";
import {RewardToken} from "../src/RewardToken.sol";
import {TestBase} from "./utils/TestBase.sol";

contract ContributionLedgerTest is TestBase {
    uint64 internal constant WINDOW = 1 hours;
    uint128 internal constant CAP = 2 ** 100;
    address internal admin = address(0xA11CE);
    address internal validator = address(0x7A1);
    address internal alice = address(0xA1);
    address internal bob = address(0xB0B);
    address internal relayer = address(0xBEEF);

    RewardToken internal token;
    ContributionLedger internal ledger;

    function setUp() public {
        vm.warp(1_000_000);
        ledger = new ContributionLedger("Hive", "HIVE", WINDOW, admin, 1, CAP);
        token = ledger.token();
        vm.startPrank(admin);
        ledger.grantRole(ledger.VALIDATOR_ROLE(), validator);
        token.mint(admin, 1_000_000 ether);
        token.approve(address(ledger), type(uint256).max);
        vm.stopPrank();
    }

    function _fund(uint256 amount) internal {
        vm.prank(admin);
        ledger.fund(amount);
    }

    function _twoLeaves(uint256 a, uint256 b) internal view returns (bytes32[] memory leaves) {
        leaves = new bytes32[](2);
        leaves[0] = rewardLeaf(alice, a);
        leaves[1] = rewardLeaf(bob, b);
    }

    function _postAndFinalize(uint64 epoch, bytes32 root, uint256 total) internal {
        vm.prank(validator);
        ledger.postEpoch(epoch, root, total);
        vm.warp(block.timestamp + WINDOW);
        ledger.finalizeEpoch(epoch);
    }

    function test_fund_addsToPool() public {
        _fund(100 ether);
        (uint256 funded, uint256 claimedTotal) = ledger.totals();
        vm.assertEq(funded, 100 ether, "funded");
        vm.assertEq(claimedTotal, 0, "claimed");
        vm.assertEq(token.balanceOf(address(ledger)), 100 ether, "ledger balance");
    }

    function test_fund_revertsOnZero() public {
        vm.expectRevert(ContributionLedger.ContributionLedgerZeroAmount.selector);
        vm.prank(admin);
        ledger.fund(0);
    }

    function test_postEpoch_recordsRoot() public {
        vm.prank(validator);
        ledger.postEpoch(1, bytes32(uint256(7)), 50);
        ContributionLedger.EpochRecord memory record = ledger.epochRecord(1);
        vm.assertEq(record.root, bytes32(uint256(7)), "root");
        vm.assertEq(uint256(record.cumulativeTotal), 50, "total");
        vm.assertEq(uint256(record.postedAt), block.timestamp, "postedAt");
        vm.assertEq(uint256(ledger.latestEpoch()), 1, "latest");
    }

    function test_postEpoch_revertsForNonValidator() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, alice, ledger.VALIDATOR_ROLE()
            )
        );
        vm.prank(alice);
        ledger.postEpoch(1, bytes32(uint256(7)), 50);
    }

    function test_postEpoch_revertsOnEpochZero() public {
        vm.expectRevert(abi.encodeWithSelector(ContributionLedger.ContributionLedgerInvalidEpoch.selector, 0));
        vm.prank(validator);
        ledger.postEpoch(0, bytes32(uint256(7)), 50);
    }

    function test_postEpoch_revertsOnEmptyRoot() public {
        vm.expectRevert(ContributionLedger.ContributionLedgerEmptyRoot.selector);
        vm.prank(validator);
        ledger.postEpoch(1, bytes32(0), 50);
    }

    function test_postEpoch_revertsWhenNotIncreasing() public {
        vm.startPrank(validator);
        vm.expectRevert(abi.encodeWithSelector(ContributionLedger.ContributionLedgerEpochSkipped.selector, 2, 0));
        ledger.postEpoch(2, bytes32(uint256(7)), 50);
        ledger.postEpoch(1, bytes32(uint256(7)), 50);
        vm.expectRevert(
            abi.encodeWithSelector(ContributionLedger.ContributionLedgerConflictingRoot.selector, 1, bytes32(uint256(7)), 50)
        );
        ledger.postEpoch(1, bytes32(uint256(8)), 50);
        vm.expectRevert(abi.encodeWithSelector(ContributionLedger.ContributionLedgerAlreadyVoted.selector, 1, validator));
        ledger.postEpoch(1, bytes32(uint256(7)), 50);
        vm.stopPrank();
    }

    function test_postEpoch_revertsWhenTotalDecreases() public {
        _fund(100);
        _postAndFinalize(1, bytes32(uint256(7)), 50);
        vm.expectRevert(abi.encodeWithSelector(ContributionLedger.ContributionLedgerTotalDecreased.selector, 49, 50));
        vm.prank(validator);
        ledger.postEpoch(2, bytes32(uint256(8)), 49);
    }

    function test_disputeEpoch_blocksFinalizeAndAllowsRepost() public {
        _fund(100);
        vm.prank(validator);
        ledger.postEpoch(1, bytes32(uint256(7)), 50);
        vm.prank(validator);
        ledger.disputeEpoch(1, keccak256("bad root"));
        vm.assertTrue(ledger.epochRecord(1).disputed, "disputed");
        vm.warp(block.timestamp + WINDOW);
        vm.expectRevert(abi.encodeWithSelector(ContributionLedger.ContributionLedgerEpochDisputed.selector, 1));
        ledger.finalizeEpoch(1);
        vm.prank(validator);
        ledger.postEpoch(1, bytes32(uint256(9)), 60);
        vm.warp(block.timestamp + WINDOW);
        ledger.finalizeEpoch(1);
        (uint64 epoch, bytes32 root, uint256 total) = ledger.finalized();
        vm.assertEq(uint256(epoch), 1, "final epoch");
        vm.assertEq(root, bytes32(uint256(9)), "final root");
        vm.assertEq(total, 60, "final total");
    }

    function test_disputeEpoch_reverts() public {
        _fund(100);
        vm.expectRevert(abi.encodeWithSelector(ContributionLedger.ContributionLedgerUnknownEpoch.selector, 1));
        vm.prank(validator);
        ledger.disputeEpoch(1, bytes32(0));

        vm.prank(validator);
        ledger.postEpoch(1, bytes32(uint256(7)), 50);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, bob, ledger.VALIDATOR_ROLE())
        );
        vm.prank(bob);
        ledger.disputeEpoch(1, bytes32(0));

        uint256 finalAt = block.timestamp + WINDOW;
        vm.warp(finalAt);
        vm.expectRevert(
            abi.encodeWithSelector(ContributionLedger.ContributionLedgerChallengeWindowClosed.selector, 1, finalAt)
        );
        vm.prank(validator);
        ledger.disputeEpoch(1, bytes32(0));

        ledger.finalizeEpoch(1);
        vm.expectRevert(abi.encodeWithSelector(ContributionLedger.ContributionLedgerEpochAlreadyFinal.selector, 1, 1));
        vm.prank(validator);
        ledger.disputeEpoch(1, bytes32(0));
    }

    function test_disputeEpoch_revertsWhenDisputedTwice() public {
        vm.startPrank(validator);
        ledger.postEpoch(1, bytes32(uint256(7)), 50);
        ledger.disputeEpoch(1, bytes32(0));
        vm.expectRevert(abi.encodeWithSelector(ContributionLedger.ContributionLedgerEpochDisputed.selector, 1));
        ledger.disputeEpoch(1, bytes32(0));
        vm.stopPrank();
    }

    function test_finalizeEpoch_reverts() public {
        _fund(100);
        vm.expectRevert(abi.encodeWithSelector(ContributionLedger.ContributionLedgerUnknownEpoch.selector, 1));
        ledger.finalizeEpoch(1);

        vm.prank(validator);
        ledger.postEpoch(1, bytes32(uint256(7)), 50);
        uint256 finalAt = block.timestamp + WINDOW;
        vm.expectRevert(
            abi.encodeWithSelector(ContributionLedger.ContributionLedgerChallengeWindowOpen.selector, 1, finalAt)
        );
        ledger.finalizeEpoch(1);

        vm.warp(finalAt);
        ledger.finalizeEpoch(1);
        vm.expectRevert(abi.encodeWithSelector(ContributionLedger.ContributionLedgerEpochAlreadyFinal.selector, 1, 1));
        ledger.finalizeEpoch(1);
    }

    function test_claim_paysDifferenceToAnyRelayer() public {
        _fund(100 ether);
        bytes32[] memory leaves = _twoLeaves(10 ether, 5 ether);
        _postAndFinalize(1, merkleRoot(leaves), 15 ether);
        vm.prank(relayer);
        uint256 payout = ledger.claim(alice, 10 ether, merkleProof(leaves, 0));
        vm.assertEq(payout, 10 ether, "first payout");
        vm.assertEq(token.balanceOf(alice), 10 ether, "alice after epoch 1");

        leaves = _twoLeaves(25 ether, 5 ether);
        _postAndFinalize(2, merkleRoot(leaves), 30 ether);
        vm.prank(relayer);
        payout = ledger.claim(alice, 25 ether, merkleProof(leaves, 0));
        vm.assertEq(payout, 15 ether, "second payout is the difference");
        vm.assertEq(token.balanceOf(alice), 25 ether, "alice after epoch 2");
        vm.assertEq(ledger.claimed(alice), 25 ether, "claimed");
        (, uint256 claimedTotal) = ledger.totals();
        vm.assertEq(claimedTotal, 25 ether, "total claimed");
        vm.assertEq(token.balanceOf(relayer), 0, "relayer gets nothing");
    }

    function test_claim_revertsWithoutFinalRoot() public {
        vm.expectRevert(ContributionLedger.ContributionLedgerNoFinalRoot.selector);
        ledger.claim(alice, 1, new bytes32[](0));
    }

    function test_claim_revertsOnWrongProof() public {
        _fund(100 ether);
        bytes32[] memory leaves = _twoLeaves(10 ether, 5 ether);
        _postAndFinalize(1, merkleRoot(leaves), 15 ether);
        bytes32[] memory proof = merkleProof(leaves, 0);
        vm.expectRevert(
            abi.encodeWithSelector(ContributionLedger.ContributionLedgerInvalidProof.selector, alice, 11 ether)
        );
        ledger.claim(alice, 11 ether, proof);
        vm.expectRevert(abi.encodeWithSelector(ContributionLedger.ContributionLedgerInvalidProof.selector, bob, 10 ether));
        ledger.claim(bob, 10 ether, proof);
    }

    function test_claim_revertsWhenNothingLeft() public {
        _fund(100 ether);
        bytes32[] memory leaves = _twoLeaves(10 ether, 5 ether);
        _postAndFinalize(1, merkleRoot(leaves), 15 ether);
        ledger.claim(alice, 10 ether, merkleProof(leaves, 0));
        vm.expectRevert(
            abi.encodeWithSelector(
                ContributionLedger.ContributionLedgerNothingToClaim.selector, alice, 10 ether, 10 ether
            )
        );
        ledger.claim(alice, 10 ether, merkleProof(leaves, 0));
    }

    function test_claim_neverPaysMoreThanFunded() public {
        _fund(12 ether);
        bytes32[] memory leaves = _twoLeaves(10 ether, 5 ether);
        vm.prank(validator);
        ledger.postEpoch(1, merkleRoot(leaves), 15 ether);
        vm.warp(block.timestamp + WINDOW);
        vm.expectRevert(
            abi.encodeWithSelector(ContributionLedger.ContributionLedgerTotalExceedsFunding.selector, 15 ether, 12 ether)
        );
        ledger.finalizeEpoch(1);
        vm.expectRevert(ContributionLedger.ContributionLedgerNoFinalRoot.selector);
        ledger.claim(alice, 10 ether, merkleProof(leaves, 0));
        vm.assertEq(token.balanceOf(alice), 0, "alice unpaid");
    }

    function test_claim_usesOnlyFinalRoot() public {
        _fund(100 ether);
        bytes32[] memory first = _twoLeaves(10 ether, 5 ether);
        _postAndFinalize(1, merkleRoot(first), 15 ether);
        bytes32[] memory second = _twoLeaves(50 ether, 5 ether);
        vm.prank(validator);
        ledger.postEpoch(2, merkleRoot(second), 55 ether);
        vm.expectRevert(
            abi.encodeWithSelector(ContributionLedger.ContributionLedgerInvalidProof.selector, alice, 50 ether)
        );
        ledger.claim(alice, 50 ether, merkleProof(second, 0));
    }

    function test_claim_addsToAnExistingBalance() public {
        _fund(100 ether);
        vm.prank(admin);
        token.transfer(alice, 3 ether);
        bytes32[] memory leaves = _twoLeaves(10 ether, 5 ether);
        _postAndFinalize(1, merkleRoot(leaves), 15 ether);

        ledger.claim(alice, 10 ether, merkleProof(leaves, 0));

        vm.assertEq(token.balanceOf(alice), 13 ether, "held + paid");
        vm.assertEq(token.claimedOf(alice), 10 ether, "claimed in the token record");
        vm.assertEq(token.balanceOf(address(ledger)), 90 ether, "pool");
        vm.assertEq(token.claimedOf(address(ledger)), 10 ether, "pool paid out");
    }

    function test_claim_emitsRewardClaimed() public {
        _fund(100 ether);
        bytes32[] memory leaves = _twoLeaves(10 ether, 5 ether);
        _postAndFinalize(1, merkleRoot(leaves), 15 ether);
        bytes32[] memory proof = merkleProof(leaves, 1);
        vm.expectEmit();
        emit ContributionLedger.RewardClaimed(bob, relayer, 5 ether, 5 ether);
        vm.prank(relayer);
        ledger.claim(bob, 5 ether, proof);
    }

    function test_views() public view {
        vm.assertEq(uint256(ledger.challengeWindow()), WINDOW, "window");
    }

    function test_constructor_createsItsToken() public view {
        vm.assertEq(token.ledger(), address(ledger), "the token settles this ledger's claims");
        vm.assertTrue(keccak256(bytes(token.symbol())) == keccak256("HIVE"), "symbol");
        vm.assertTrue(token.hasRole(token.DEFAULT_ADMIN_ROLE(), admin), "token admin");
        vm.assertTrue(token.hasRole(token.MINTER_ROLE(), admin), "minter");
        vm.assertTrue(ledger.hasRole(ledger.DEFAULT_ADMIN_ROLE(), admin), "ledger admin");
        vm.assertFalse(token.hasRole(token.MINTER_ROLE(), address(ledger)), "the ledger cannot mint");
    }

    /// forge-config: default.fuzz.runs = 256
    function testFuzz_claimPaysExactlyProvenAmount(uint256 seed, uint8 count, uint256 pick) public {
        uint256 n = bound(count, 1, 40);
        bytes32[] memory leaves = new bytes32[](n);
        address[] memory accounts = new address[](n);
        uint256[] memory amounts = new uint256[](n);
        uint256 total;
        for (uint256 i; i < n; ++i) {
            accounts[i] = address(uint160(uint256(keccak256(abi.encode(seed, i))) | 1));
            amounts[i] = bound(uint256(keccak256(abi.encode(seed, i, "a"))), 1, 1000 ether);
            total += amounts[i];
            leaves[i] = rewardLeaf(accounts[i], amounts[i]);
        }
        _fund(total);
        _postAndFinalize(1, merkleRoot(leaves), total);
        uint256 index = bound(pick, 0, n - 1);
        bytes32[] memory proof = merkleProof(leaves, index);
        uint256 before = token.balanceOf(accounts[index]);
        ledger.claim(accounts[index], amounts[index], proof);
        vm.assertEq(token.balanceOf(accounts[index]) - before, amounts[index], "paid amount");
        vm.expectRevert(
            abi.encodeWithSelector(
                ContributionLedger.ContributionLedgerInvalidProof.selector, accounts[index], amounts[index] + 1
            )
        );
        ledger.claim(accounts[index], amounts[index] + 1, proof);
    }

    /// forge-config: default.fuzz.runs = 256
    function testFuzz_repeatedClaimsPayTheDifferenceWithinFunding(
        uint96 firstA,
        uint96 growA,
        uint96 firstB,
        uint96 growB,
        uint96 funding
    ) public {
        uint256 a1 = bound(firstA, 1, 100_000 ether);
        uint256 b1 = bound(firstB, 1, 100_000 ether);
        uint256 a2 = a1 + bound(growA, 0, 100_000 ether);
        uint256 b2 = b1 + bound(growB, 0, 100_000 ether);
        // A final total never exceeds the pool, so the pool covers the second root.
        uint256 funded = bound(funding, a2 + b2, a2 + b2 + 100_000 ether);
        _fund(funded);
        bytes32[] memory first = _twoLeaves(a1, b1);
        _postAndFinalize(1, merkleRoot(first), a1 + b1);
        _claimOrShortfall(alice, a1, merkleProof(first, 0));
        _claimOrShortfall(bob, b1, merkleProof(first, 1));
        bytes32[] memory second = _twoLeaves(a2, b2);
        _postAndFinalize(2, merkleRoot(second), a2 + b2);
        _claimOrShortfall(alice, a2, merkleProof(second, 0));
        _claimOrShortfall(bob, b2, merkleProof(second, 1));

        (uint256 fundedTotal, uint256 claimedTotal) = ledger.totals();
        vm.assertLe(claimedTotal, fundedTotal, "claimed <= funded");
        vm.assertEq(claimedTotal, ledger.claimed(alice) + ledger.claimed(bob), "total is the sum");
        vm.assertEq(token.balanceOf(alice), ledger.claimed(alice), "alice paid what she claimed");
        vm.assertEq(token.balanceOf(bob), ledger.claimed(bob), "bob paid what he claimed");
        vm.assertLe(ledger.claimed(alice), a2, "alice within her cumulative");
        vm.assertLe(ledger.claimed(bob), b2, "bob within his cumulative");
        vm.assertEq(token.balanceOf(address(ledger)), funded - claimedTotal, "pool holds the rest");
    }

    /// @dev Claims `amount`; when the pool cannot pay the difference, expects the shortfall error.
    function _claimOrShortfall(address account, uint256 amount, bytes32[] memory proof) internal {
        uint256 already = ledger.claimed(account);
        if (amount <= already) return;
        (uint256 funded, uint256 claimedTotal) = ledger.totals();
        uint256 payout = amount - already;
        if (payout > funded - claimedTotal) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    ContributionLedger.ContributionLedgerInsufficientFunds.selector, payout, funded - claimedTotal
                )
            );
        }
        ledger.claim(account, amount, proof);
    }
}
