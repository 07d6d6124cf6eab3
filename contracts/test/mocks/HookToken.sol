// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {ContributionLedger} from "../../src/ContributionLedger.sol";
import {RewardToken} from "../../src/RewardToken.sol";

interface ITokenReceiver {
    function onTokenReceived(uint256 amount) external;
}

/// @dev A RewardToken that calls back contract recipients (as ERC-777/ERC-1363 tokens do),
/// on transfers and on claim payouts, so that tests can try to re-enter the ledger from
/// inside a payout.
contract HookToken is RewardToken {
    constructor(address admin, address ledger_) RewardToken("Hook", "HOOK", admin, ledger_) {}

    function settleClaim(address account, uint256 cumulativeAmount) public override returns (uint256 payout) {
        payout = super.settleClaim(account, cumulativeAmount);
        _notify(account, payout);
    }

    function _update(address from, address to, uint256 value) internal override {
        super._update(from, to, value);
        if (from != address(0)) _notify(to, value);
    }

    function _notify(address to, uint256 value) private {
        if (to.code.length > 0) {
            try ITokenReceiver(to).onTokenReceived(value) {} catch {}
        }
    }
}

/// @dev A ContributionLedger whose token is a {HookToken}; `admin` administers and mints both.
contract HookLedger is ContributionLedger {
    constructor(uint64 challengeWindow_, address admin) ContributionLedger("Hook", "HOOK", challengeWindow_, admin, 1, type(uint128).max) {}

    function hookToken() external view returns (HookToken) {
        return HookToken(address(this.token()));
    }

    function _createToken(string memory, string memory, address admin) internal override returns (RewardToken) {
        return new HookToken(admin, address(this));
    }
}
