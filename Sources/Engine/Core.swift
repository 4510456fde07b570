// Core building blocks of the engine: manually managed float storage, the fixed-partition
// worker pool that every parallel kernel uses, and thin wrappers over OpenBLAS sgemm.
// Determinism rule: every parallel loop splits work by `partition`, never by timing, and every
// cross-thread reduction is summed in thread-index order.
import CBLAS
import Dispatch

/// Heap storage for `Float`s, zero-initialised, owned by exactly one layer or store.
/// Hot loops use `ptr` directly (an array stored in a class pays exclusivity checks and retain/release on every access in a loop).
public final class FloatBuffer: @unchecked Sendable {
    public private(set) var ptr: UnsafeMutablePointer<Float>
    public private(set) var count: Int

    public init(count: Int) {
        self.count = count
        ptr = .allocate(capacity: max(count, 1))
        ptr.initialize(repeating: 0, count: max(count, 1))
    }

    deinit { ptr.deallocate() }

    /// Grows (never shrinks) to hold at least `count` floats. Contents are zeroed on growth.
    public func reserve(_ newCount: Int) {
        guard newCount > count else { return }
        ptr.deallocate()
        ptr = .allocate(capacity: newCount)
        ptr.initialize(repeating: 0, count: newCount)
        count = newCount
    }

    public func zero() { ptr.update(repeating: 0, count: count) }

    public subscript(i: Int) -> Float {
        get { ptr[i] }
        set { ptr[i] = newValue }
    }

    public var array: [Float] { Array(UnsafeBufferPointer(start: ptr, count: count)) }
}

/// The range of `0..<count` owned by part `index` of `parts` (contiguous, sizes differ by ≤ 1).
@inline(__always)
public func partition(_ count: Int, parts: Int, index: Int) -> Range<Int> {
    let base = count / parts, extra = count % parts
    let start = index * base + min(index, extra)
    return start ..< start + base + (index < extra ? 1 : 0)
}

/// A fixed number of workers. `run` calls `body(t)` for t in 0..<threads, concurrently when
/// threads > 1. OpenBLAS itself is kept single-threaded: parallelism lives at this one level.
public struct Workers: Sendable {
    public let threads: Int

    public init(threads: Int) {
        self.threads = max(1, threads)
        openblas_set_num_threads(1)
    }

    @inline(__always)
    public func run(_ body: (Int) -> Void) {
        if threads == 1 { body(0); return }
        DispatchQueue.concurrentPerform(iterations: threads, execute: body)
    }

    /// Runs `body(range)` over a fixed partition of `0..<count`; serial when `count` is small.
    @inline(__always)
    public func forEachRange(_ count: Int, minimumPerThread: Int = 1, _ body: (Range<Int>) -> Void) {
        let parts = max(1, min(threads, count / max(minimumPerThread, 1)))
        if parts == 1 { body(0 ..< count); return }
        DispatchQueue.concurrentPerform(iterations: parts) { t in
            body(partition(count, parts: parts, index: t))
        }
    }
}

/// Row-major sgemm: C[m×n] = alpha · op(A) · op(B) + beta · C.
@inline(__always)
func gemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
          alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
          b: UnsafePointer<Float>, ldb: Int,
          beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
    guard m > 0, n > 0 else { return }
    if k == 0 {
        if beta == 0 { for i in 0 ..< m { (c + i * ldc).update(repeating: 0, count: n) } }
        return
    }
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}
