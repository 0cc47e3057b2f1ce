// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// Moves ETH inside contract calls, for the internal-transfer tests: value that no log and
/// no transaction field shows, only a call trace.
contract Forwarder {
    /// Pays `to` all of msg.value from inside this call.
    function forward(address payable to) external payable {
        (bool ok, ) = to.call{value: msg.value}("");
        require(ok, "Forwarder: payment failed");
    }

    /// Pays `to` through another forwarder: a transfer two calls deep.
    function forwardVia(Forwarder next, address payable to) external payable {
        next.forward{value: msg.value}(to);
    }

    /// Splits msg.value between two recipients (two internal transfers in one transaction).
    function split(address payable a, address payable b) external payable {
        uint256 half = msg.value / 2;
        a.transfer(half);
        b.transfer(msg.value - half);
    }

    /// Tries to pay `to` and keeps the value when that call fails: a failed inner call moves nothing.
    function tryPay(address to) external payable returns (bool ok) {
        (ok, ) = to.call{value: msg.value}("");
    }

    /// Pays out of the contract's own balance (a withdrawal).
    function payout(address payable to, uint256 amount) external {
        to.transfer(amount);
    }

    receive() external payable {}
}

/// Refuses every payment.
contract Rejecter {
    receive() external payable {
        revert("Rejecter: no payments");
    }
}
