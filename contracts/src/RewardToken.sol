// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";

/**
 * @title RewardToken
 * @notice The ERC-20 token that hivenet pays contributors in and that nodes stake.
 * @dev Only accounts holding `MINTER_ROLE` can mint; the deployer's admin grants it
 * (usually to a treasury that funds the {ContributionLedger}).
 *
 * A minimal ERC-20 with the behaviour, events and errors of OpenZeppelin's `ERC20`, whose
 * per-account record also keeps what the account has claimed from the ledger: balance and
 * claimed amount share one storage slot, so a claim writes the claimant's state with one
 * SSTORE. Kept apart (OpenZeppelin balances plus a mapping in the ledger), a peer's first
 * claim paid for two fresh slots (2 x 22,100 gas). The {ContributionLedger} creates its
 * token and is fixed in it (an immutable, so a claim reads no extra slot to authorize it);
 * only that ledger can {settleClaim}, and it checks proofs and funding first. The supply is
 * capped at 2^128 - 1 so that balances and claimed amounts fit the record.
 */
contract RewardToken is IERC20Metadata, IERC20Errors, AccessControl {
    /// @notice Role allowed to mint new tokens.
    bytes32 public constant MINTER_ROLE = keccak256("MINTER_ROLE");

    /// @notice The most tokens that can ever exist (balances and claims are 128-bit).
    uint256 public constant MAX_SUPPLY = type(uint128).max;

    /**
     * @dev One slot per account. `claimed` is the cumulative amount the account has claimed
     * from the ledger; in the ledger's own record it is the total the ledger has paid out
     * through claims. Both fit 128 bits: a claimant's claimed amount is part of the ledger's
     * payouts, whose total is checked against 128 bits when it grows.
     */
    struct AccountRecord {
        uint128 balance;
        uint128 claimed;
    }

    mapping(address account => AccountRecord) private _accounts;
    mapping(address owner => mapping(address spender => uint256)) private _allowances;
    uint256 private _totalSupply;
    address private immutable _ledger;
    string private _name;
    string private _symbol;

    /// @dev Minting `amount` would exceed {MAX_SUPPLY}; at most `mintable` more can be minted.
    error RewardTokenSupplyCapExceeded(uint256 amount, uint256 mintable);
    /// @dev Only the token's ledger can settle claims; `caller` is not it.
    error RewardTokenUnauthorizedLedger(address caller);
    /// @dev `account` already claimed `claimed`, which is not below `cumulativeAmount`.
    error RewardTokenClaimNotIncreasing(address account, uint256 cumulativeAmount, uint256 claimed);

    /**
     * @param name_ ERC-20 name.
     * @param symbol_ ERC-20 symbol.
     * @param admin Receives `DEFAULT_ADMIN_ROLE` and `MINTER_ROLE`.
     * @param ledger_ The one contract allowed to {settleClaim} (zero: none, a token for staking only).
     */
    constructor(string memory name_, string memory symbol_, address admin, address ledger_) {
        _ledger = ledger_;
        _name = name_;
        _symbol = symbol_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(MINTER_ROLE, admin);
    }

    /**
     * @notice Mints `amount` tokens to `to`.
     * @dev Reverts with `AccessControlUnauthorizedAccount` unless the caller holds `MINTER_ROLE`.
     */
    function mint(address to, uint256 amount) external onlyRole(MINTER_ROLE) {
        if (to == address(0)) revert ERC20InvalidReceiver(address(0));
        _update(address(0), to, amount);
    }

    /**
     * @notice Pays `account` the difference between `cumulativeAmount` and what it already
     * claimed, from the ledger's balance, and records `cumulativeAmount` as claimed.
     * @dev Only the token's ledger may call it; the ledger has checked the Merkle proof and that
     * the payout stays within what was funded. Emits {Transfer} from the ledger.
     * @return payout The number of tokens moved to `account`.
     */
    function settleClaim(address account, uint256 cumulativeAmount) public virtual returns (uint256 payout) {
        address ledger_ = _ledger;
        if (msg.sender != ledger_) revert RewardTokenUnauthorizedLedger(msg.sender);
        if (account == address(0) || account == ledger_) revert ERC20InvalidReceiver(account);
        AccountRecord memory pool = _accounts[ledger_];
        AccountRecord memory claimant = _accounts[account];
        if (cumulativeAmount <= claimant.claimed) {
            revert RewardTokenClaimNotIncreasing(account, cumulativeAmount, claimant.claimed);
        }
        payout = cumulativeAmount - claimant.claimed;
        if (payout > pool.balance) revert ERC20InsufficientBalance(ledger_, pool.balance, payout);
        // Checked: the ledger's total payouts bound every claimant's claimed amount, so once
        // this sum fits 128 bits, `cumulativeAmount` (claimed + payout) does too.
        uint128 paidOut = pool.claimed + uint128(payout);
        unchecked {
            _accounts[ledger_] = AccountRecord(pool.balance - uint128(payout), paidOut);
            // Balances sum to the supply, which is capped at 128 bits.
            _accounts[account] = AccountRecord(claimant.balance + uint128(payout), uint128(cumulativeAmount));
        }
        emit Transfer(ledger_, account, payout);
    }

    /// @inheritdoc IERC20Metadata
    function name() external view returns (string memory) {
        return _name;
    }

    /// @inheritdoc IERC20Metadata
    function symbol() external view returns (string memory) {
        return _symbol;
    }

    /// @inheritdoc IERC20Metadata
    function decimals() external pure returns (uint8) {
        return 18;
    }

    /// @notice The tokens in existence.
    function totalSupply() external view returns (uint256) {
        return _totalSupply;
    }

    /// @notice The tokens owned by `account`.
    function balanceOf(address account) external view returns (uint256) {
        return _accounts[account].balance;
    }

    /// @notice The tokens `spender` may still move for `owner` with {transferFrom}.
    function allowance(address owner, address spender) public view returns (uint256) {
        return _allowances[owner][spender];
    }

    /// @notice The one contract that settles claims in this token (zero if none).
    function ledger() external view returns (address) {
        return _ledger;
    }

    /**
     * @notice The cumulative amount `account` has claimed from the ledger; for the ledger
     * itself, the total it has paid out through claims.
     */
    function claimedOf(address account) external view returns (uint256) {
        return _accounts[account].claimed;
    }

    /**
     * @notice In one call: what `account` has claimed from the ledger and what the ledger has
     * paid out in all (the ledger checks a claim against these before settling it).
     */
    function claimState(address account) external view returns (uint256 claimed, uint256 paidOut) {
        return (_accounts[account].claimed, _accounts[_ledger].claimed);
    }

    /// @notice Moves `value` tokens from the caller to `to`.
    function transfer(address to, uint256 value) external returns (bool) {
        _transfer(msg.sender, to, value);
        return true;
    }

    /// @notice Lets `spender` move up to `value` of the caller's tokens (max uint256: unlimited).
    function approve(address spender, uint256 value) external returns (bool) {
        if (spender == address(0)) revert ERC20InvalidSpender(address(0));
        _allowances[msg.sender][spender] = value;
        emit Approval(msg.sender, spender, value);
        return true;
    }

    /// @notice Moves `value` tokens from `from` to `to` within the caller's allowance.
    function transferFrom(address from, address to, uint256 value) external returns (bool) {
        uint256 current = allowance(from, msg.sender);
        if (current != type(uint256).max) {
            if (current < value) revert ERC20InsufficientAllowance(msg.sender, current, value);
            unchecked {
                _allowances[from][msg.sender] = current - value;
            }
        }
        _transfer(from, to, value);
        return true;
    }

    function _transfer(address from, address to, uint256 value) private {
        if (from == address(0)) revert ERC20InvalidSender(address(0));
        if (to == address(0)) revert ERC20InvalidReceiver(address(0));
        _update(from, to, value);
    }

    /**
     * @dev Moves `value` from `from` to `to`, or mints it when `from` is zero. `to` is never
     * zero (there is no burning). Test tokens override it to add receive hooks.
     */
    function _update(address from, address to, uint256 value) internal virtual {
        if (from == address(0)) {
            uint256 mintable = MAX_SUPPLY - _totalSupply;
            if (value > mintable) revert RewardTokenSupplyCapExceeded(value, mintable);
            _totalSupply += value;
        } else {
            uint256 fromBalance = _accounts[from].balance;
            if (fromBalance < value) revert ERC20InsufficientBalance(from, fromBalance, value);
            unchecked {
                _accounts[from].balance = uint128(fromBalance - value);
            }
        }
        unchecked {
            // value <= fromBalance or value <= mintable: the sum of balances stays <= MAX_SUPPLY.
            _accounts[to].balance += uint128(value);
        }
        emit Transfer(from, to, value);
    }
}
