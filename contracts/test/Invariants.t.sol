// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {ContributionLedger} from "../src/ContributionLedger.sol";
import {ShardRegistry} from "../src/ShardRegistry.sol";
import {HookLedger, HookToken} from "./mocks/HookToken.sol";
import {ReentrantReceiver} from "./mocks/ReentrantReceiver.sol";
import {ShardSigning} from "./ShardRegistry.t.sol";
import {TestBase} from "./utils/TestBase.sol";

/// @dev Drives the ledger through random funding, posting, disputes, finalization and claims.
/// Two of the four claimants are contracts that re-enter `claim` from the token callback.
contract LedgerHandler is TestBase {
    uint64 internal constant WINDOW = 100;
    uint256 internal constant ACCOUNTS = 4;

    HookToken public token;
    ContributionLedger public ledger;
    address[ACCOUNTS] public accounts;
    // Cumulative amounts of the next root to post; they only grow.
    uint256[ACCOUNTS] internal pending;
    // Cumulative amounts under the latest final root.
    uint256[ACCOUNTS] public finalCumulative;
    mapping(uint64 epoch => uint256[ACCOUNTS]) internal posted;
    uint64 public epoch;
    uint256 public overpaidClaims;

    constructor() {
        HookLedger hookLedger = new HookLedger(WINDOW, address(this));
        ledger = hookLedger;
        token = hookLedger.hookToken();
        ledger.grantRole(ledger.VALIDATOR_ROLE(), address(this));
        token.approve(address(ledger), type(uint256).max);
        accounts[0] = address(0xA1);
        accounts[1] = address(0xB2);
        accounts[2] = address(new ReentrantReceiver(ledger));
        accounts[3] = address(new ReentrantReceiver(ledger));
    }

    function fund(uint256 amount) external {
        amount = bound(amount, 1, 1_000 ether);
        token.mint(address(this), amount);
        ledger.fund(amount);
    }

    function earn(uint256 who, uint256 amount) external {
        pending[who % ACCOUNTS] += bound(amount, 1, 500 ether);
    }

    function post() external {
        epoch += 1;
        uint256 total;
        for (uint256 i; i < ACCOUNTS; ++i) total += pending[i];
        posted[epoch] = pending;
        ledger.postEpoch(epoch, merkleRoot(_leaves(pending)), total);
    }

    function dispute() external {
        if (epoch == 0) return;
        try ledger.disputeEpoch(epoch, bytes32(0)) {} catch {}
    }

    function finalize(uint256 wait) external {
        vm.warp(block.timestamp + bound(wait, 0, 2 * WINDOW));
        if (epoch == 0) return;
        try ledger.finalizeEpoch(epoch) {
            finalCumulative = posted[epoch];
        } catch {}
    }

    function claim(uint256 who) external {
        uint256 i = who % ACCOUNTS;
        if (finalCumulative[i] == 0) return;
        bytes32[] memory proof = merkleProof(_leaves(finalCumulative), i);
        if (i >= 2) ReentrantReceiver(accounts[i]).arm(finalCumulative[i], proof);
        try ledger.claim(accounts[i], finalCumulative[i], proof) {} catch {}
    }

    function claimTooMuch(uint256 who, uint256 extra) external {
        uint256 i = who % ACCOUNTS;
        uint256 amount = finalCumulative[i] + bound(extra, 1, 100 ether);
        bytes32[] memory proof = merkleProof(_leaves(finalCumulative), i);
        try ledger.claim(accounts[i], amount, proof) {
            overpaidClaims += 1;
        } catch {}
    }

    function accountCount() external pure returns (uint256) {
        return ACCOUNTS;
    }

    function _leaves(uint256[ACCOUNTS] memory amounts) internal view returns (bytes32[] memory leaves) {
        leaves = new bytes32[](ACCOUNTS);
        for (uint256 i; i < ACCOUNTS; ++i) leaves[i] = rewardLeaf(accounts[i], amounts[i]);
    }
}

contract LedgerInvariantTest is TestBase {
    LedgerHandler internal handler;

    function setUp() public {
        vm.warp(1_000_000);
        handler = new LedgerHandler();
    }

    function targetContracts() public view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(handler);
    }

    /// @dev The handler's own path pays out, so the invariants above are not vacuous.
    function test_handlerSequencePaysClaims() public {
        handler.fund(1_000 ether);
        handler.earn(0, 7 ether);
        handler.earn(2, 3 ether);
        handler.post();
        handler.finalize(200);
        handler.claim(0);
        handler.claim(2);
        vm.assertEq(handler.token().balanceOf(handler.accounts(0)), 7 ether, "plain account paid");
        vm.assertEq(handler.token().balanceOf(handler.accounts(2)), 3 ether, "reentrant account paid once");
    }

    function invariant_totalClaimedNeverExceedsFunded() public view {
        ContributionLedger ledger = handler.ledger();
        (uint256 funded, uint256 claimedTotal) = ledger.totals();
        vm.assertLe(claimedTotal, funded, "claimed <= funded");
        vm.assertEq(handler.token().balanceOf(address(ledger)), funded - claimedTotal, "pool holds the rest");
    }

    function invariant_noAccountBeyondFinalCumulative() public view {
        ContributionLedger ledger = handler.ledger();
        for (uint256 i; i < handler.accountCount(); ++i) {
            address account = handler.accounts(i);
            vm.assertLe(ledger.claimed(account), handler.finalCumulative(i), "claimed <= final cumulative");
            vm.assertEq(handler.token().balanceOf(account), ledger.claimed(account), "paid == claimed");
        }
        vm.assertEq(handler.overpaidClaims(), 0, "no claim above the proven amount");
    }

    /// @dev The token's record of the pool's payouts is exactly what its claimants got.
    function invariant_paidOutIsTheSumOfClaims() public view {
        ContributionLedger ledger = handler.ledger();
        uint256 sum;
        for (uint256 i; i < handler.accountCount(); ++i) sum += ledger.claimed(handler.accounts(i));
        (, uint256 claimedTotal) = ledger.totals();
        vm.assertEq(claimedTotal, sum, "paid out == sum of claims");
        vm.assertEq(handler.token().claimedOf(address(ledger)), sum, "pool record");
    }

    function invariant_reentrantReceiversNeverSucceed() public view {
        for (uint256 i = 2; i < handler.accountCount(); ++i) {
            vm.assertEq(ReentrantReceiver(handler.accounts(i)).reentrySuccesses(), 0, "no reentrant claim");
        }
    }
}

/// @dev Registers shards with fresh signatures and keeps trying replayed and cross-chain ones.
contract SignatureHandler is ShardSigning {
    ShardRegistry public registry;
    uint256 internal constant KEY = 0xA11CE5;
    bytes32[] internal roots;
    bytes[] internal signatures;
    uint256 public registered;
    uint256 public badAccepted;

    constructor() {
        registry = new ShardRegistry(1, address(this));
    }

    function registerFresh(bytes32 salt) external {
        bytes32 root = keccak256(abi.encode(salt, registered));
        if (registry.shardOf(root).owner != address(0)) return;
        address owner = vm.addr(KEY);
        uint256 deadline = block.timestamp + 1 days;
        bytes memory sig = signRegistration(registry, KEY, block.chainid, root, "MIT", registry.nonces(owner), deadline);
        registry.registerShardBySig(root, owner, "MIT", deadline, sig);
        roots.push(root);
        signatures.push(sig);
        registered += 1;
    }

    function replay(uint256 index, bytes32 newRoot) external {
        if (signatures.length == 0) return;
        index %= signatures.length;
        address owner = vm.addr(KEY);
        uint256 deadline = block.timestamp + 1 days;
        // Same signature, for its own root (already taken) and for an unused root.
        try registry.registerShardBySig(roots[index], owner, "MIT", deadline, signatures[index]) {
            badAccepted += 1;
        } catch {}
        try registry.registerShardBySig(newRoot, owner, "MIT", deadline, signatures[index]) {
            badAccepted += 1;
        } catch {}
    }

    function crossChain(uint64 otherChain, bytes32 root) external {
        if (otherChain == block.chainid || root == bytes32(0)) return;
        address owner = vm.addr(KEY);
        uint256 deadline = block.timestamp + 1 days;
        bytes memory sig = signRegistration(registry, KEY, otherChain, root, "MIT", registry.nonces(owner), deadline);
        try registry.registerShardBySig(root, owner, "MIT", deadline, sig) {
            badAccepted += 1;
        } catch {}
    }
}

contract SignatureInvariantTest is TestBase {
    SignatureHandler internal handler;

    function setUp() public {
        vm.warp(1_000_000);
        handler = new SignatureHandler();
    }

    function targetContracts() public view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(handler);
    }

    function invariant_replayedOrCrossChainSignaturesRejected() public view {
        vm.assertEq(handler.badAccepted(), 0, "no replayed or foreign signature accepted");
        vm.assertEq(handler.registry().nonces(vm.addr(0xA11CE5)), handler.registered(), "one nonce per registration");
    }
}

contract ReentrancyTest is TestBase {
    function test_reentrantReceiverIsPaidOnce() public {
        vm.warp(1_000_000);
        HookLedger ledger = new HookLedger(10, address(this));
        HookToken token = ledger.hookToken();
        ledger.grantRole(ledger.VALIDATOR_ROLE(), address(this));
        ReentrantReceiver receiver = new ReentrantReceiver(ledger);
        token.mint(address(this), 100 ether);
        token.approve(address(ledger), type(uint256).max);
        ledger.fund(100 ether);
        bytes32[] memory leaves = new bytes32[](2);
        leaves[0] = rewardLeaf(address(receiver), 10 ether);
        leaves[1] = rewardLeaf(address(0xB0B), 90 ether);
        ledger.postEpoch(1, merkleRoot(leaves), 100 ether);
        vm.warp(block.timestamp + 10);
        ledger.finalizeEpoch(1);
        bytes32[] memory proof = merkleProof(leaves, 0);
        receiver.arm(10 ether, proof);

        ledger.claim(address(receiver), 10 ether, proof);

        vm.assertEq(token.balanceOf(address(receiver)), 10 ether, "paid exactly once");
        vm.assertEq(receiver.reentryAttempts(), 1, "it tried");
        vm.assertEq(receiver.reentrySuccesses(), 0, "and failed");
        vm.assertEq(
            receiver.lastRevertSelector(),
            ReentrancyGuardTransient.ReentrancyGuardReentrantCall.selector,
            "stopped by the guard"
        );
        vm.assertEq(token.balanceOf(address(ledger)), 90 ether, "rest stays in the pool");
    }
}
