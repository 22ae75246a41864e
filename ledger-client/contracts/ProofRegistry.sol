// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title ProofRegistry
/// @notice Anchors gateways' signed metering proofs (PROTOCOL.md §5, §7): one record per
///         (gateway, intervalStart), append-only per gateway, and an RFC 6962 inclusion check
///         against an anchored root for disputes. Anyone may submit a proof (relaying).
contract ProofRegistry {
    /// @notice A gateway's signed summary of one settlement interval (PROTOCOL.md §2, §5).
    struct MeterProof {
        address gateway;
        uint64 intervalStart;
        uint64 intervalEnd;
        uint32 count;
        bytes32 root;
        uint64 importWh;
        uint64 exportWh;
    }

    struct Anchor {
        bytes32 root;
        uint32 count;
        bool anchored;
    }

    bytes32 public constant METER_PROOF_TYPEHASH = keccak256(
        "MeterProof(address gateway,uint64 intervalStart,uint64 intervalEnd,uint32 count,bytes32 root,uint64 importWh,uint64 exportWh)"
    );
    bytes32 private constant DOMAIN_TYPEHASH = keccak256("EIP712Domain(string name,string version,uint256 chainId)");
    bytes32 private constant NAME_HASH = keccak256("flexgate");
    bytes32 private constant VERSION_HASH = keccak256("1");
    /// @dev secp256k1 n / 2: signatures with a larger s are malleable copies and are rejected.
    uint256 private constant HALF_N = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;
    /// @notice Most proofs one anchorBatch accepts (keeps one transaction well under a block).
    uint256 public constant MAX_BATCH = 128;

    uint256 private immutable cachedChainId;
    bytes32 private immutable cachedDomainSeparator;

    mapping(address gateway => mapping(uint64 intervalStart => Anchor)) private anchors;
    mapping(address gateway => uint64 intervalStart) private last;

    /// @notice Emitted once per anchored proof, with the proof's fields.
    event ProofAnchored(
        address indexed gateway,
        uint64 indexed intervalStart,
        uint64 intervalEnd,
        uint32 count,
        bytes32 root,
        uint64 importWh,
        uint64 exportWh
    );

    error BadSignatureLength(uint256 length);
    error BadSignatureV(uint8 v);
    error BadSignatureHighS();
    error WrongSigner(address recovered, address gateway);
    error EmptyInterval(uint64 intervalStart, uint64 intervalEnd);
    error CountRootMismatch(uint32 count, bytes32 root);
    /// @dev The same (gateway, intervalStart) was anchored before.
    error AlreadyAnchored(address gateway, uint64 intervalStart);
    /// @dev intervalStart is not after the gateway's last anchored interval.
    error OutOfOrder(address gateway, uint64 intervalStart, uint64 lastAnchored);
    error BatchLength(uint256 proofs, uint256 sigs);

    constructor() {
        cachedChainId = block.chainid;
        cachedDomainSeparator = _buildDomainSeparator();
    }

    /// @notice Anchors one signed proof. Reverts unless `sig` is the gateway's EIP-712 signature
    ///         of `proof` and `proof.intervalStart` is after the gateway's last anchored one.
    /// @param proof The MeterProof as signed by `proof.gateway`.
    /// @param sig 65 bytes r ‖ s ‖ v, v ∈ {27, 28}, low s.
    function anchor(MeterProof calldata proof, bytes calldata sig) external {
        _anchor(proof, sig);
    }

    /// @notice Anchors several proofs in one transaction, in the given order; one bad proof
    ///         reverts the whole batch. At most MAX_BATCH proofs.
    /// @param proofs The proofs, intervalStart strictly increasing per gateway.
    /// @param sigs One signature per proof, same order.
    function anchorBatch(MeterProof[] calldata proofs, bytes[] calldata sigs) external {
        if (proofs.length != sigs.length || proofs.length == 0 || proofs.length > MAX_BATCH) {
            revert BatchLength(proofs.length, sigs.length);
        }
        for (uint256 i = 0; i < proofs.length; ++i) {
            _anchor(proofs[i], sigs[i]);
        }
    }

    /// @notice The anchored root and leaf count of a gateway's interval.
    /// @return root The tree root (0x00…00 for an empty interval).
    /// @return count The number of leaves.
    /// @return anchored False when nothing was anchored for this interval.
    function rootOf(address gateway, uint64 intervalStart)
        external
        view
        returns (bytes32 root, uint32 count, bool anchored)
    {
        Anchor storage a = anchors[gateway][intervalStart];
        return (a.root, a.count, a.anchored);
    }

    /// @notice The intervalStart of the gateway's last anchored proof, 0 if none.
    function lastAnchored(address gateway) external view returns (uint64) {
        return last[gateway];
    }

    /// @notice The EIP-712 domain separator for this chain (name "flexgate", version "1", chainId).
    function domainSeparator() public view returns (bytes32) {
        return block.chainid == cachedChainId ? cachedDomainSeparator : _buildDomainSeparator();
    }

    /// @notice The EIP-712 digest a gateway signs for `proof`.
    function digestOf(MeterProof calldata proof) public view returns (bytes32) {
        bytes32 structHash = keccak256(
            abi.encode(
                METER_PROOF_TYPEHASH,
                proof.gateway,
                proof.intervalStart,
                proof.intervalEnd,
                proof.count,
                proof.root,
                proof.importWh,
                proof.exportWh
            )
        );
        return keccak256(abi.encodePacked(hex"1901", domainSeparator(), structHash));
    }

    /// @notice Checks an RFC 6962 §2.1.1 inclusion proof (keccak256, 0x01 node prefix) of
    ///         `leafHash` against the anchored root of (gateway, intervalStart).
    /// @param leafHash keccak256(0x00 ‖ leafData), PROTOCOL.md §5.
    /// @param index The leaf's position, 0-based, in time order.
    /// @param size The tree's size; must equal the anchored count.
    /// @param path The audit path, leaf side first.
    /// @return True when the interval is anchored with `size` leaves and the path leads to its root.
    function verifyInclusion(
        address gateway,
        uint64 intervalStart,
        bytes32 leafHash,
        uint256 index,
        uint256 size,
        bytes32[] calldata path
    ) external view returns (bool) {
        Anchor storage a = anchors[gateway][intervalStart];
        if (!a.anchored || size != a.count || index >= size) return false;
        // RFC 9162 §2.1.3.2 (the same check as RFC 6962 §2.1.1, written as an algorithm).
        uint256 fn = index;
        uint256 sn = size - 1;
        bytes32 r = leafHash;
        for (uint256 i = 0; i < path.length; ++i) {
            if (sn == 0) return false;
            if (fn & 1 == 1 || fn == sn) {
                r = keccak256(abi.encodePacked(hex"01", path[i], r));
                if (fn & 1 == 0) {
                    while (fn & 1 == 0 && fn != 0) {
                        fn >>= 1;
                        sn >>= 1;
                    }
                }
            } else {
                r = keccak256(abi.encodePacked(hex"01", r, path[i]));
            }
            fn >>= 1;
            sn >>= 1;
        }
        return sn == 0 && r == a.root;
    }

    function _anchor(MeterProof calldata proof, bytes calldata sig) private {
        address gateway = proof.gateway;
        uint64 start = proof.intervalStart;
        if (proof.intervalEnd <= start) revert EmptyInterval(start, proof.intervalEnd);
        if ((proof.count == 0) != (proof.root == bytes32(0))) revert CountRootMismatch(proof.count, proof.root);

        address signer = _recover(digestOf(proof), sig);
        if (signer == address(0) || signer != gateway) revert WrongSigner(signer, gateway);

        uint64 lastStart = last[gateway];
        if (start <= lastStart) {
            if (anchors[gateway][start].anchored) revert AlreadyAnchored(gateway, start);
            revert OutOfOrder(gateway, start, lastStart);
        }
        last[gateway] = start;
        anchors[gateway][start] = Anchor({root: proof.root, count: proof.count, anchored: true});
        emit ProofAnchored(gateway, start, proof.intervalEnd, proof.count, proof.root, proof.importWh, proof.exportWh);
    }

    /// @dev ecrecover with OpenZeppelin ECDSA's rules: 65 bytes, v ∈ {27, 28}, s ≤ n/2.
    ///      Returns address(0) when the signature does not recover.
    function _recover(bytes32 digest, bytes calldata sig) private pure returns (address) {
        if (sig.length != 65) revert BadSignatureLength(sig.length);
        bytes32 r = bytes32(sig[0:32]);
        bytes32 s = bytes32(sig[32:64]);
        uint8 v = uint8(sig[64]);
        if (v != 27 && v != 28) revert BadSignatureV(v);
        if (uint256(s) > HALF_N) revert BadSignatureHighS();
        return ecrecover(digest, v, r, s);
    }

    function _buildDomainSeparator() private view returns (bytes32) {
        return keccak256(abi.encode(DOMAIN_TYPEHASH, NAME_HASH, VERSION_HASH, block.chainid));
    }
}
