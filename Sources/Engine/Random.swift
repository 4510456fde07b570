// Counter-based random numbers. A generator is (key, counter): two integers that a checkpoint
// stores exactly. Independent streams (per parameter init, per epoch shuffle, per sample
// augmentation) are derived by hashing the seed with a purpose tag and indices, so no draw
// depends on how many draws another part of the program made.
import Foundation

/// SplitMix64 finaliser: a bijective 64-bit mixer with good avalanche.
@inline(__always)
public func mix64(_ x: UInt64) -> UInt64 {
    var z = x &+ 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}

/// Purposes of random streams; the raw values are part of the determinism contract.
public enum StreamPurpose: UInt64, Sendable {
    case initialisation = 1, shuffle = 2, augmentation = 3, pruning = 4, noise = 5
}

public struct CounterRNG: Sendable, Equatable, Codable {
    public var key: UInt64
    public var counter: UInt64

    public init(key: UInt64, counter: UInt64 = 0) {
        self.key = key
        self.counter = counter
    }

    /// A stream for `purpose` and up to two indices, derived from a run seed.
    public init(seed: UInt64, purpose: StreamPurpose, _ a: UInt64 = 0, _ b: UInt64 = 0) {
        key = mix64(mix64(mix64(seed ^ 0x5EED) ^ purpose.rawValue &* 0xA24B_AED4_963E_E407) ^ a) ^ mix64(b &+ 0x51ED)
        counter = 0
    }

    @inline(__always)
    public mutating func next() -> UInt64 {
        counter &+= 1
        return mix64(key &+ counter &* 0x9E37_79B9_7F4A_7C15) ^ (key >> 7)
    }

    /// Uniform in [0, 1) with 53 random bits.
    @inline(__always)
    public mutating func uniform() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// Uniform integer in 0..<bound (bound > 0), unbiased (Lemire's method with rejection).
    public mutating func below(_ bound: Int) -> Int {
        let b = UInt64(bound)
        while true {
            let r = next().multipliedFullWidth(by: b)
            if r.low >= (0 &- b) % b { return Int(r.high) }
        }
    }

    /// Standard normal via Box–Muller (one value per call; deterministic).
    public mutating func normal() -> Double {
        let u1 = 1.0 - uniform()   // (0, 1]
        let u2 = uniform()
        return (-2.0 * log(u1)).squareRoot() * cos(2.0 * Double.pi * u2)
    }

    /// Fisher–Yates permutation of 0..<n.
    public mutating func permutation(_ n: Int) -> [Int] {
        var p = Array(0 ..< n)
        if n < 2 { return p }
        for i in stride(from: n - 1, to: 0, by: -1) {
            p.swapAt(i, below(i + 1))
        }
        return p
    }
}

