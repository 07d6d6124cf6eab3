// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

interface ITokenReceiver {
    function onTokenReceived(uint256 amount) external;
}

/// @dev An ERC-20 that calls back contract recipients (as ERC-777/ERC-1363 tokens do), so
/// that tests can try to re-enter the ledger from inside a payout.
contract HookToken is ERC20 {
    constructor() ERC20("Hook", "HOOK") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function _update(address from, address to, uint256 value) internal override {
        super._update(from, to, value);
        if (to.code.length > 0 && from != address(0)) {
            try ITokenReceiver(to).onTokenReceived(value) {} catch {}
        }
    }
}
