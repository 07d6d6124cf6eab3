// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {ContributionLedger} from "../../src/ContributionLedger.sol";
import {ITokenReceiver} from "./HookToken.sol";

/// @dev A claimant that, when paid, immediately tries to claim again with the same proof.
contract ReentrantReceiver is ITokenReceiver {
    ContributionLedger private immutable _ledger;
    uint256 private _amount;
    bytes32[] private _proof;
    uint256 public reentryAttempts;
    uint256 public reentrySuccesses;
    bytes4 public lastRevertSelector;

    constructor(ContributionLedger ledger_) {
        _ledger = ledger_;
    }

    function arm(uint256 amount, bytes32[] calldata proof) external {
        _amount = amount;
        _proof = proof;
    }

    function onTokenReceived(uint256) external {
        if (msg.sender != address(_ledger.token())) return;
        reentryAttempts += 1;
        try _ledger.claim(address(this), _amount, _proof) {
            reentrySuccesses += 1;
        } catch (bytes memory reason) {
            lastRevertSelector = bytes4(reason);
        }
    }
}
