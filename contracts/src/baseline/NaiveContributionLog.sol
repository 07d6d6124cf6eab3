// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/**
 * @title NaiveContributionLog
 * @notice Baseline for `bench/gas.py` only: stores one record per contribution, the design
 * that {ContributionLedger}'s one-root-per-epoch replaces. Not deployed by hivenet.
 */
contract NaiveContributionLog {
    struct Contribution {
        address account;
        uint64 epoch;
        uint256 amount;
    }

    Contribution[] private _contributions;
    mapping(address account => uint256) private _totals;

    /// @notice Emitted after a contribution was stored.
    event ContributionRecorded(uint256 indexed index, address indexed account, uint64 epoch, uint256 amount);

    /// @notice Stores one contribution of `amount` by `account` in `epoch`.
    function record(uint64 epoch, address account, uint256 amount) external {
        _contributions.push(Contribution(account, epoch, amount));
        _totals[account] += amount;
        emit ContributionRecorded(_contributions.length - 1, account, epoch, amount);
    }

    /// @notice Total recorded for `account` over all epochs.
    function totalOf(address account) external view returns (uint256) {
        return _totals[account];
    }
}
