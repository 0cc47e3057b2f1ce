// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// Benchmark helper: emits many ERC-20 Transfer logs in one transaction.
contract BenchEmitter {
    event Transfer(address indexed from, address indexed to, uint256 value);

    function emitTransfers(address[] calldata from, address[] calldata to, uint256 value) external {
        for (uint256 i = 0; i < from.length; i++) {
            emit Transfer(from[i], to[i], value + i);
        }
    }
}
