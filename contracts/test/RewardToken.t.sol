// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {RewardToken} from "../src/RewardToken.sol";
import {TestBase} from "./utils/TestBase.sol";

contract RewardTokenTest is TestBase {
    address internal admin = address(0xA11CE);
    address internal alice = address(0xA1);
    RewardToken internal token;

    function setUp() public {
        token = new RewardToken("Hive", "HIVE", admin);
    }

    function test_mint_byMinter() public {
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
        token.mint(admin, b);
        vm.stopPrank();
        vm.assertEq(token.totalSupply(), uint256(a) + b, "supply is the sum");
    }
}
