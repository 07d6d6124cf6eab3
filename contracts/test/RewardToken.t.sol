// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {RewardToken} from "../src/RewardToken.sol";
import {TestBase} from "./utils/TestBase.sol";

contract RewardTokenTest is TestBase {
    address internal admin = address(0xA11CE);
    address internal alice = address(0xA1);
    address internal bob = address(0xB0B);
    address internal pool = address(0x1ED6E5);
    RewardToken internal token;

    function setUp() public {
        token = new RewardToken("Hive", "HIVE", admin, pool);
    }

    /// @dev Gives the ledger (`pool`) `amount` tokens.
    function _pool(uint256 amount) internal {
        vm.prank(admin);
        token.mint(pool, amount);
    }

    // -- metadata and mint ---------------------------------------------------------------

    function test_metadata() public view {
        vm.assertTrue(keccak256(bytes(token.name())) == keccak256("Hive"), "name");
        vm.assertTrue(keccak256(bytes(token.symbol())) == keccak256("HIVE"), "symbol");
        vm.assertEq(uint256(token.decimals()), 18, "decimals");
        vm.assertEq(token.MAX_SUPPLY(), type(uint128).max, "cap");
    }

    function test_mint_byMinter() public {
        vm.expectEmit();
        emit IERC20.Transfer(address(0), alice, 5 ether);
        vm.prank(admin);
        token.mint(alice, 5 ether);
        vm.assertEq(token.balanceOf(alice), 5 ether, "balance");
        vm.assertEq(token.totalSupply(), 5 ether, "supply");
    }

    function test_mint_revertsForNonMinter() public {
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, alice, token.MINTER_ROLE())
        );
        vm.prank(alice);
        token.mint(alice, 1);
    }

    function test_mint_revertsToZeroAddress() public {
        vm.expectRevert(abi.encodeWithSelector(IERC20Errors.ERC20InvalidReceiver.selector, address(0)));
        vm.prank(admin);
        token.mint(address(0), 1);
    }

    function test_mint_revertsOverTheCap() public {
        vm.startPrank(admin);
        token.mint(alice, type(uint128).max - 10);
        vm.expectRevert(abi.encodeWithSelector(RewardToken.RewardTokenSupplyCapExceeded.selector, 11, 10));
        token.mint(bob, 11);
        token.mint(bob, 10);
        vm.stopPrank();
        vm.assertEq(token.totalSupply(), type(uint128).max, "supply at the cap");
    }

    function test_minterRoleCanBeGranted() public {
        bytes32 role = token.MINTER_ROLE();
        vm.prank(admin);
        token.grantRole(role, alice);
        vm.prank(alice);
        token.mint(alice, 3);
        vm.assertEq(token.balanceOf(alice), 3, "minted by new minter");
    }

    function testFuzz_mintAddsUp(uint128 a, uint128 b) public {
        vm.startPrank(admin);
        token.mint(alice, a);
        uint256 mintable = type(uint128).max - uint256(a);
        if (b > mintable) {
            vm.expectRevert(abi.encodeWithSelector(RewardToken.RewardTokenSupplyCapExceeded.selector, b, mintable));
            token.mint(admin, b);
            b = 0;
        } else {
            token.mint(admin, b);
        }
        vm.stopPrank();
        vm.assertEq(token.totalSupply(), uint256(a) + b, "supply is the sum");
        vm.assertEq(token.balanceOf(alice) + token.balanceOf(admin), token.totalSupply(), "balances sum to supply");
    }

    // -- ERC-20 ------------------------------------------------------------------------

    function test_transfer_movesTokens() public {
        vm.prank(admin);
        token.mint(alice, 10);
        vm.expectEmit();
        emit IERC20.Transfer(alice, bob, 4);
        vm.prank(alice);
        vm.assertTrue(token.transfer(bob, 4), "returns true");
        vm.assertEq(token.balanceOf(alice), 6, "alice");
        vm.assertEq(token.balanceOf(bob), 4, "bob");
    }

    function test_transfer_toSelfKeepsBalance() public {
        vm.prank(admin);
        token.mint(alice, 10);
        vm.prank(alice);
        token.transfer(alice, 7);
        vm.assertEq(token.balanceOf(alice), 10, "unchanged");
    }

    function test_transfer_reverts() public {
        vm.prank(admin);
        token.mint(alice, 10);
        vm.expectRevert(abi.encodeWithSelector(IERC20Errors.ERC20InsufficientBalance.selector, alice, 10, 11));
        vm.prank(alice);
        token.transfer(bob, 11);
        vm.expectRevert(abi.encodeWithSelector(IERC20Errors.ERC20InvalidReceiver.selector, address(0)));
        vm.prank(alice);
        token.transfer(address(0), 1);
    }

    function test_approve_setsAllowance() public {
        vm.expectEmit();
        emit IERC20.Approval(alice, bob, 9);
        vm.prank(alice);
        vm.assertTrue(token.approve(bob, 9), "returns true");
        vm.assertEq(token.allowance(alice, bob), 9, "allowance");
    }

    function test_approve_revertsForZeroSpender() public {
        vm.expectRevert(abi.encodeWithSelector(IERC20Errors.ERC20InvalidSpender.selector, address(0)));
        vm.prank(alice);
        token.approve(address(0), 1);
    }

    function test_transferFrom_spendsAllowance() public {
        vm.prank(admin);
        token.mint(alice, 10);
        vm.prank(alice);
        token.approve(bob, 6);
        vm.prank(bob);
        vm.assertTrue(token.transferFrom(alice, admin, 4), "returns true");
        vm.assertEq(token.allowance(alice, bob), 2, "allowance left");
        vm.assertEq(token.balanceOf(admin), 4, "moved");
        vm.expectRevert(abi.encodeWithSelector(IERC20Errors.ERC20InsufficientAllowance.selector, bob, 2, 3));
        vm.prank(bob);
        token.transferFrom(alice, admin, 3);
    }

    function test_transferFrom_unlimitedAllowanceStays() public {
        vm.prank(admin);
        token.mint(alice, 10);
        vm.prank(alice);
        token.approve(bob, type(uint256).max);
        vm.prank(bob);
        token.transferFrom(alice, bob, 10);
        vm.assertEq(token.allowance(alice, bob), type(uint256).max, "still unlimited");
    }

    function test_transferFrom_revertsFromZeroAddress() public {
        vm.expectRevert(abi.encodeWithSelector(IERC20Errors.ERC20InvalidSender.selector, address(0)));
        vm.prank(bob);
        token.transferFrom(address(0), bob, 0);
    }

    /// forge-config: default.fuzz.runs = 256
    function testFuzz_transfersConserveSupply(uint128 minted, uint128 moved, uint128 spent) public {
        vm.prank(admin);
        token.mint(alice, minted);
        uint256 a = bound(moved, 0, minted);
        vm.prank(alice);
        token.transfer(bob, a);
        uint256 b = bound(spent, 0, a);
        vm.prank(bob);
        token.approve(admin, b);
        vm.prank(admin);
        token.transferFrom(bob, alice, b);
        vm.assertEq(token.balanceOf(alice), uint256(minted) - a + b, "alice");
        vm.assertEq(token.balanceOf(bob), a - b, "bob");
        vm.assertEq(token.balanceOf(alice) + token.balanceOf(bob), token.totalSupply(), "conserved");
        vm.assertEq(token.claimedOf(alice) + token.claimedOf(bob), 0, "transfers are not claims");
    }

    // -- ledger binding and claim settlement ---------------------------------------------

    function test_ledger_isFixedAtConstruction() public {
        vm.assertEq(token.ledger(), pool, "ledger");
        RewardToken stakingOnly = new RewardToken("Stake", "STK", admin, address(0));
        vm.assertEq(stakingOnly.ledger(), address(0), "no ledger");
        vm.expectRevert(abi.encodeWithSelector(RewardToken.RewardTokenUnauthorizedLedger.selector, alice));
        vm.prank(alice);
        stakingOnly.settleClaim(bob, 1);
    }

    function test_settleClaim_paysTheDifferenceFromThePool() public {
        _pool(100);
        vm.prank(admin);
        token.mint(alice, 7);

        vm.expectEmit();
        emit IERC20.Transfer(pool, alice, 30);
        vm.prank(pool);
        vm.assertEq(token.settleClaim(alice, 30), 30, "first payout");
        vm.prank(pool);
        vm.assertEq(token.settleClaim(alice, 45), 15, "second payout is the difference");

        vm.assertEq(token.balanceOf(alice), 7 + 45, "held + paid");
        vm.assertEq(token.claimedOf(alice), 45, "claimed");
        vm.assertEq(token.balanceOf(pool), 55, "pool");
        vm.assertEq(token.claimedOf(pool), 45, "pool paid out");
        vm.assertEq(token.totalSupply(), 107, "no mint");
        (uint256 claimed, uint256 paidOut) = token.claimState(alice);
        vm.assertEq(claimed, 45, "state claimed");
        vm.assertEq(paidOut, 45, "state paid out");
    }

    function test_settleClaim_revertsForAnyoneButTheLedger() public {
        _pool(100);
        vm.expectRevert(abi.encodeWithSelector(RewardToken.RewardTokenUnauthorizedLedger.selector, alice));
        vm.prank(alice);
        token.settleClaim(alice, 1);
        vm.expectRevert(abi.encodeWithSelector(RewardToken.RewardTokenUnauthorizedLedger.selector, admin));
        vm.prank(admin);
        token.settleClaim(alice, 1);
    }

    function test_settleClaim_revertsForInvalidClaimant() public {
        _pool(100);
        vm.expectRevert(abi.encodeWithSelector(IERC20Errors.ERC20InvalidReceiver.selector, address(0)));
        vm.prank(pool);
        token.settleClaim(address(0), 1);
        vm.expectRevert(abi.encodeWithSelector(IERC20Errors.ERC20InvalidReceiver.selector, pool));
        vm.prank(pool);
        token.settleClaim(pool, 1);
    }

    function test_settleClaim_revertsWhenNotIncreasing() public {
        _pool(100);
        vm.prank(pool);
        token.settleClaim(alice, 30);
        vm.expectRevert(abi.encodeWithSelector(RewardToken.RewardTokenClaimNotIncreasing.selector, alice, 30, 30));
        vm.prank(pool);
        token.settleClaim(alice, 30);
        vm.expectRevert(abi.encodeWithSelector(RewardToken.RewardTokenClaimNotIncreasing.selector, alice, 0, 30));
        vm.prank(pool);
        token.settleClaim(alice, 0);
    }

    function test_settleClaim_revertsBeyondThePoolBalance() public {
        _pool(100);
        vm.expectRevert(abi.encodeWithSelector(IERC20Errors.ERC20InsufficientBalance.selector, pool, 100, 101));
        vm.prank(pool);
        token.settleClaim(alice, 101);
    }

    function test_settleClaim_paidOutTotalBeyond128BitsReverts() public {
        _pool(type(uint128).max);
        vm.prank(pool);
        token.settleClaim(alice, type(uint128).max);
        vm.prank(alice);
        token.transfer(pool, type(uint128).max);
        // The pool could pay again, but its paid-out total would not fit the record.
        vm.expectRevert(abi.encodeWithSignature("Panic(uint256)", 0x11));
        vm.prank(pool);
        token.settleClaim(bob, 1);
    }

    /// forge-config: default.fuzz.runs = 256
    function testFuzz_settleClaimKeepsRecordsConsistent(uint128 funded, uint128 held, uint128 first, uint128 second)
        public
    {
        uint256 f = bound(funded, 1, type(uint128).max / 2);
        uint256 h = bound(held, 0, type(uint128).max / 2);
        _pool(f);
        vm.prank(admin);
        token.mint(alice, h);
        uint256 c1 = bound(first, 1, f);
        uint256 c2 = bound(second, c1 + 1, c1 + f);
        vm.prank(pool);
        token.settleClaim(alice, c1);
        if (c2 - c1 > f - c1) {
            vm.expectRevert(
                abi.encodeWithSelector(IERC20Errors.ERC20InsufficientBalance.selector, pool, f - c1, c2 - c1)
            );
            vm.prank(pool);
            token.settleClaim(alice, c2);
            c2 = c1;
        } else {
            vm.prank(pool);
            token.settleClaim(alice, c2);
        }
        vm.assertEq(token.balanceOf(alice), h + c2, "alice holds what she had plus her claims");
        vm.assertEq(token.claimedOf(alice), c2, "alice claimed");
        vm.assertEq(token.balanceOf(pool), f - c2, "pool");
        vm.assertEq(token.claimedOf(pool), c2, "pool paid out");
        vm.assertEq(token.totalSupply(), f + h, "supply unchanged by claims");
    }
}
