// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// A token shaped like early ERC-20s (MKR, SAI): `symbol()` returns bytes32, there is no
/// `decimals()`, and `transfer` returns nothing. Also emits a malformed Transfer-like log
/// (wrong topic count) so the parser's skip path is tested against a real EVM.
contract NonStandardToken {
    bytes32 public symbol = "MKR";
    mapping(address => uint256) public balanceOf;

    event Transfer(address indexed from, address indexed to, uint256 value);

    function mint(address to, uint256 amount) external {
        balanceOf[to] += amount;
        emit Transfer(address(0), to, amount);
    }

    function transfer(address to, uint256 amount) external {
        require(balanceOf[msg.sender] >= amount, "NonStandardToken: balance");
        balanceOf[msg.sender] -= amount;
        balanceOf[to] += amount;
        emit Transfer(msg.sender, to, amount);
    }

    /// Emits `Transfer(address,address,uint256)`'s topic0 with only the `from` topic:
    /// neither ERC-20 (3 topics) nor ERC-721 (4 topics).
    function emitMalformed(address who) external {
        bytes32 topic0 = keccak256("Transfer(address,address,uint256)");
        bytes32 t1 = bytes32(uint256(uint160(who)));
        assembly {
            log2(0, 0, topic0, t1)
        }
    }
}
