// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Registry
/// @notice Who takes part (PROTOCOL.md §7): aggregators are admitted by the operator (the
///         deployer); gateways register themselves.
contract Registry {
    /// @notice The operator, who admits and removes aggregators.
    address public immutable operator;

    mapping(address => bool) private aggregators;
    mapping(address => bool) private gateways;

    event AggregatorAdmitted(address indexed aggregator);
    event AggregatorRemoved(address indexed aggregator);
    event GatewayRegistered(address indexed gateway);

    error NotOperator(address caller);
    error ZeroAddress();
    error AlreadyAggregator(address aggregator);
    error NotAggregator(address aggregator);
    error AlreadyRegistered(address gateway);

    constructor() {
        operator = msg.sender;
    }

    modifier onlyOperator() {
        if (msg.sender != operator) revert NotOperator(msg.sender);
        _;
    }

    /// @notice Admits `aggregator`. Operator only; reverts if it is already admitted.
    function admitAggregator(address aggregator) external onlyOperator {
        if (aggregator == address(0)) revert ZeroAddress();
        if (aggregators[aggregator]) revert AlreadyAggregator(aggregator);
        aggregators[aggregator] = true;
        emit AggregatorAdmitted(aggregator);
    }

    /// @notice Removes an admitted aggregator. Operator only; reverts if it is not admitted.
    function removeAggregator(address aggregator) external onlyOperator {
        if (!aggregators[aggregator]) revert NotAggregator(aggregator);
        aggregators[aggregator] = false;
        emit AggregatorRemoved(aggregator);
    }

    /// @notice Registers the caller as a gateway (its address is its identity, PROTOCOL.md §1).
    function registerGateway() external {
        if (gateways[msg.sender]) revert AlreadyRegistered(msg.sender);
        gateways[msg.sender] = true;
        emit GatewayRegistered(msg.sender);
    }

    /// @notice True when `account` is an admitted aggregator.
    function isAggregator(address account) external view returns (bool) {
        return aggregators[account];
    }

    /// @notice True when `account` registered itself as a gateway.
    function isGateway(address account) external view returns (bool) {
        return gateways[account];
    }
}
