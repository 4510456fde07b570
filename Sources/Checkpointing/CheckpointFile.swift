// The checkpoint file format, version 1 (docs/CHECKPOINT-FORMAT.md): a little-endian header,
// a table of named tensors, a JSON metadata blob, one zstd frame holding every tensor's bytes
// (float32 data byte-shuffled) and a CRC32 trailer over the whole file. Decoding verifies
// everything and reports each kind of damage with its own error.
import CZlib
import CZstd
import Foundation
import PrunedJSON

public enum DType: UInt8, Sendable, CaseIterable {
    case f32 = 0, f64 = 1, u8 = 2, i64 = 3
    public var size: Int { switch self { case .f32: 4; case .f64: 8; case .u8: 1; case .i64: 8 } }
    public var name: String { switch self { case .f32: "f32"; case .f64: "f64"; case .u8: "u8"; case .i64: "i64" } }
}

/// One tensor's entry in the table: where its bytes lie in the uncompressed payload.
public struct TensorEntry: Sendable, Equatable {
    public var name: String
    public var dtype: DType
    public var shape: [Int]
    public var offset: Int
    public var byteLength: Int
    public var count: Int { shape.reduce(1, *) }
}

/// Every way a checkpoint can fail to load or save, each with its own message.
public enum CheckpointError: Error, CustomStringConvertible, Equatable {
    case truncated(expected: Int, actual: Int)
    case badMagic
    case unsupportedVersion(found: UInt32, supported: UInt32)
    case headerChecksum
    case checksumMismatch(stored: UInt32, computed: UInt32)
    case corruptTable(String)
    case corruptMetadata(String)
    case decompression(String)
    case missingTensor(String)
    case shapeMismatch(name: String, expected: [Int], found: [Int])
    case dtypeMismatch(name: String, expected: DType, found: DType)
    case stateMismatch(String)
    case io(path: String, problem: String)
    case insufficientSpace(path: String, needed: Int, available: Int)
    case noCheckpoint(String)

    public var description: String {
        switch self {
        case let .truncated(e, a): return "truncated checkpoint: the file has \(a) bytes, its header declares \(e)"
        case .badMagic: return "not a pruned checkpoint (bad magic number)"
        case let .unsupportedVersion(f, s): return "checkpoint format version \(f) is newer than this build supports (\(s)); use a newer pruned"
        case .headerChecksum: return "corrupt checkpoint header (header CRC32 mismatch)"
        case let .checksumMismatch(s, c):
            return String(format: "corrupt checkpoint: file CRC32 is %08x, the trailer records %08x", c, s)
        case let .corruptTable(m): return "corrupt tensor table: \(m)"
        case let .corruptMetadata(m): return "corrupt checkpoint metadata: \(m)"
        case let .decompression(m): return "corrupt compressed payload: \(m)"
        case let .missingTensor(n): return "checkpoint lacks tensor \(n) that the model needs"
        case let .shapeMismatch(n, e, f): return "tensor \(n) has shape \(f) in the checkpoint, the model expects \(e)"
        case let .dtypeMismatch(n, e, f): return "tensor \(n) is \(f.name) in the checkpoint, expected \(e.name)"
        case let .stateMismatch(m): return "checkpoint does not fit this run: \(m)"
        case let .io(p, m): return "\(p): \(m)"
        case let .insufficientSpace(p, n, a): return "\(p): not enough free space for a checkpoint (\(n) bytes needed, \(a) available)"
        case let .noCheckpoint(m): return m
        }
    }

    /// Damage to a file (as opposed to a mismatch with the run or an I/O failure): such a file
    /// is quarantined and the previous checkpoint is used.
    public var isCorruption: Bool {
        switch self {
        case .truncated, .badMagic, .headerChecksum, .checksumMismatch, .corruptTable, .corruptMetadata, .decompression: return true
        default: return false
        }
    }
}

/// A checkpoint in memory: named tensors over one uncompressed payload, and JSON metadata.
public struct Snapshot {
    public private(set) var entries: [TensorEntry] = []
    public private(set) var payload: [UInt8] = []
    public var metadata: JSON = .object([])
    private var index: [String: Int] = [:]

    public init() {}

    /// Reserves payload capacity (avoids regrowth copies for large models).
    public mutating func reserve(bytes: Int) { payload.reserveCapacity(bytes) }

    private mutating func append(_ name: String, _ dtype: DType, _ shape: [Int], _ bytes: UnsafeRawBufferPointer) {
        precondition(index[name] == nil, "tensor \(name) added twice")
        while payload.count % 8 != 0 { payload.append(0) }
        index[name] = entries.count
        entries.append(TensorEntry(name: name, dtype: dtype, shape: shape, offset: payload.count, byteLength: bytes.count))
        payload.append(contentsOf: bytes)
    }

    public mutating func add(_ name: String, f32 p: UnsafePointer<Float>, count: Int, shape: [Int]? = nil) {
        append(name, .f32, shape ?? [count], UnsafeRawBufferPointer(start: p, count: count * 4))
    }
    public mutating func add(_ name: String, f32 a: [Float], shape: [Int]? = nil) {
        a.withUnsafeBytes { append(name, .f32, shape ?? [a.count], $0) }
    }
    public mutating func add(_ name: String, f64 a: [Double], shape: [Int]? = nil) {
        a.withUnsafeBytes { append(name, .f64, shape ?? [a.count], $0) }
    }
    public mutating func add(_ name: String, i64 a: [Int64], shape: [Int]? = nil) {
        a.withUnsafeBytes { append(name, .i64, shape ?? [a.count], $0) }
    }
    public mutating func add(_ name: String, u8 a: [UInt8], shape: [Int]? = nil) {
        a.withUnsafeBytes { append(name, .u8, shape ?? [a.count], $0) }
    }

    public func entry(_ name: String) -> TensorEntry? { index[name].map { entries[$0] } }

    /// The entry for `name`, checked against the expected dtype and shape.
    public func require(_ name: String, _ dtype: DType, shape: [Int]? = nil) throws -> TensorEntry {
        guard let e = entry(name) else { throw CheckpointError.missingTensor(name) }
        guard e.dtype == dtype else { throw CheckpointError.dtypeMismatch(name: name, expected: dtype, found: e.dtype) }
        if let shape, shape != e.shape { throw CheckpointError.shapeMismatch(name: name, expected: shape, found: e.shape) }
        return e
    }

    /// Copies a verified f32 tensor into `p` (count floats).
    public func copy(_ e: TensorEntry, into p: UnsafeMutablePointer<Float>) {
        payload.withUnsafeBytes { raw in
            guard let base = raw.baseAddress, e.byteLength > 0, e.offset + e.byteLength <= raw.count else { return }
            UnsafeMutableRawPointer(p).copyMemory(from: base + e.offset, byteCount: e.byteLength)
        }
    }

    public func f32(_ name: String, shape: [Int]? = nil) throws -> [Float] { try typed(name, .f32, shape, Float.self) }
    public func f64(_ name: String, shape: [Int]? = nil) throws -> [Double] { try typed(name, .f64, shape, Double.self) }
    public func i64(_ name: String, shape: [Int]? = nil) throws -> [Int64] { try typed(name, .i64, shape, Int64.self) }
    public func u8(_ name: String, shape: [Int]? = nil) throws -> [UInt8] { try typed(name, .u8, shape, UInt8.self) }

    private func typed<T>(_ name: String, _ d: DType, _ shape: [Int]?, _: T.Type) throws -> [T] {
        let e = try require(name, d, shape: shape)
        let n = e.byteLength / d.size
        guard n > 0 else { return [] }
        return [T](unsafeUninitializedCapacity: n) { buf, done in
            payload.withUnsafeBytes { raw in
                guard let dst = buf.baseAddress, let src = raw.baseAddress, e.offset + n * d.size <= raw.count else { return }
                UnsafeMutableRawPointer(dst).copyMemory(from: src + e.offset, byteCount: n * d.size)
                done = n
            }
        }
    }

    /// Rebuilds a snapshot from decoded parts (entries already validated against the payload).
    init(entries: [TensorEntry], payload: [UInt8], metadata: JSON) {
        self.entries = entries
        self.payload = payload
        self.metadata = metadata
        for (i, e) in entries.enumerated() { index[e.name] = i }
    }
}

/// Header fields and verification results, as `pruned ckpt inspect` shows them.
public struct CheckpointInfo: Sendable {
    public var version: UInt32
    public var flags: UInt32
    public var fileBytes: Int
    public var payloadBytes: Int
    public var compressedBytes: Int
    public var entries: [TensorEntry]
    public var metadata: JSON
    public var storedCRC: UInt32
    public var computedCRC: UInt32
    public var compressionRatio: Double { compressedBytes > 0 ? Double(payloadBytes) / Double(compressedBytes) : 0 }
}

public enum CheckpointFile {
    public static let magic: [UInt8] = Array("PRUNEDCK".utf8)
    public static let endMagic: [UInt8] = Array("PCKE".utf8)
    public static let version: UInt32 = 1
    public static let headerSize = 64
    public static let trailerSize = 8
    /// Flag bit 0: float32 tensors are byte-shuffled in the payload.
    public static let flagShuffled: UInt32 = 1

    // MARK: encoding

    public static func encode(_ s: Snapshot, level: Int = 1, shuffle: Bool = true) throws -> [UInt8] {
        var table: [UInt8] = []
        for e in s.entries {
            let name = Array(e.name.utf8)
            put16(&table, UInt16(name.count)); table += name
            table.append(e.dtype.rawValue); table.append(UInt8(e.shape.count))
            for d in e.shape { put64(&table, UInt64(d)) }
            put64(&table, UInt64(e.offset)); put64(&table, UInt64(e.byteLength))
        }
        let meta = Array(s.metadata.rendered.utf8)
        var raw = s.payload
        if shuffle {
            raw.withUnsafeMutableBytes { dst in
                s.payload.withUnsafeBytes { src in
                    guard let sb = src.baseAddress, let db = dst.baseAddress else { return }
                    for e in s.entries where e.dtype == .f32 && e.byteLength > 0 {
                        byteShuffle(sb + e.offset, db + e.offset, e.byteLength / 4)
                    }
                }
            }
        }
        let compressed = try compress(raw, level: level)
        var out: [UInt8] = []
        out.reserveCapacity(headerSize + table.count + meta.count + compressed.count + trailerSize)
        out += magic
        put32(&out, version)
        put32(&out, shuffle ? flagShuffled : 0)
        put64(&out, UInt64(headerSize))
        put64(&out, UInt64(table.count))
        put64(&out, UInt64(meta.count))
        put64(&out, UInt64(compressed.count))
        put64(&out, UInt64(raw.count))
        put32(&out, UInt32(s.entries.count))
        put32(&out, crc(out, 0, 60))
        out += table
        out += meta
        out += compressed
        put32(&out, crc(out, 0, out.count))
        out += endMagic
        return out
    }

    // MARK: decoding

    /// Reads and verifies the header, the whole-file checksum, the table and the metadata,
    /// without decompressing the payload.
    public static func inspect(_ b: [UInt8]) throws -> CheckpointInfo {
        guard b.count >= 16 else { throw CheckpointError.truncated(expected: headerSize + trailerSize, actual: b.count) }
        guard Array(b[0 ..< 8]) == magic else { throw CheckpointError.badMagic }
        let v = get32(b, 8)
        guard v <= version else { throw CheckpointError.unsupportedVersion(found: v, supported: version) }
        guard v >= 1 else { throw CheckpointError.corruptTable("format version 0 does not exist") }
        guard b.count >= headerSize + trailerSize else { throw CheckpointError.truncated(expected: headerSize + trailerSize, actual: b.count) }
        guard get32(b, 60) == crc(b, 0, 60) else { throw CheckpointError.headerChecksum }
        let flags = get32(b, 12)
        let tableOffset = get64(b, 16), tableLen = get64(b, 24), metaLen = get64(b, 32)
        let compLen = get64(b, 40), rawLen = get64(b, 48), count = Int(get32(b, 56))
        let limit = UInt64(1) << 40
        guard tableOffset == UInt64(headerSize), tableLen < limit, metaLen < limit, compLen < limit, rawLen < limit else {
            throw CheckpointError.corruptTable("implausible section lengths in the header")
        }
        let total = headerSize + Int(tableLen) + Int(metaLen) + Int(compLen) + trailerSize
        guard b.count >= total else { throw CheckpointError.truncated(expected: total, actual: b.count) }
        guard b.count == total else { throw CheckpointError.corruptTable("\(b.count - total) unexpected bytes after the trailer") }
        let stored = get32(b, total - 8)
        let computed = crc(b, 0, total - 8)
        guard stored == computed else { throw CheckpointError.checksumMismatch(stored: stored, computed: computed) }
        guard Array(b[(total - 4)...]) == endMagic else { throw CheckpointError.corruptTable("bad end marker") }
        // Table.
        var entries: [TensorEntry] = []
        var p = headerSize
        let tableEnd = headerSize + Int(tableLen)
        func need(_ n: Int) throws { if p + n > tableEnd { throw CheckpointError.corruptTable("entry \(entries.count) runs past the table") } }
        var names = Set<String>()
        for _ in 0 ..< count {
            try need(2); let nl = Int(get16(b, p)); p += 2
            try need(nl + 2)
            guard let name = String(bytes: b[p ..< p + nl], encoding: .utf8), !name.isEmpty else {
                throw CheckpointError.corruptTable("entry \(entries.count) has an invalid name")
            }
            p += nl
            guard let dt = DType(rawValue: b[p]) else { throw CheckpointError.corruptTable("\(name): unknown dtype \(b[p])") }
            let rank = Int(b[p + 1]); p += 2
            try need(8 * rank + 16)
            var shape: [Int] = []
            var elements: UInt64 = 1
            for _ in 0 ..< rank {
                let d = get64(b, p); p += 8
                guard d < limit else { throw CheckpointError.corruptTable("\(name): implausible dimension") }
                shape.append(Int(d))
                elements = elements.multipliedReportingOverflow(by: d).partialValue
                if elements >= limit { throw CheckpointError.corruptTable("\(name): implausible size") }
            }
            let off = get64(b, p), len = get64(b, p + 8); p += 16
            guard len == elements * UInt64(dt.size), off <= rawLen, len <= rawLen - off else {
                throw CheckpointError.corruptTable("\(name): offset/length outside the payload or inconsistent with its shape")
            }
            guard names.insert(name).inserted else { throw CheckpointError.corruptTable("\(name) appears twice") }
            entries.append(TensorEntry(name: name, dtype: dt, shape: shape, offset: Int(off), byteLength: Int(len)))
        }
        guard p == tableEnd else { throw CheckpointError.corruptTable("table length disagrees with its entries") }
        let metaBytes = b[tableEnd ..< tableEnd + Int(metaLen)]
        guard let text = String(bytes: metaBytes, encoding: .utf8) else { throw CheckpointError.corruptMetadata("not UTF-8") }
        let meta: JSON
        do { meta = try JSON.parse(text) } catch { throw CheckpointError.corruptMetadata("\(error)") }
        return CheckpointInfo(version: v, flags: flags, fileBytes: b.count, payloadBytes: Int(rawLen), compressedBytes: Int(compLen),
                              entries: entries, metadata: meta, storedCRC: stored, computedCRC: computed)
    }

    /// Fully verifies and decodes a checkpoint.
    public static func decode(_ b: [UInt8]) throws -> Snapshot {
        let info = try inspect(b)
        let start = headerSize + Int(get64(b, 24)) + Int(get64(b, 32))
        var raw = try decompress(b, start, info.compressedBytes, expected: info.payloadBytes)
        if info.flags & flagShuffled != 0 {
            let shuffled = raw
            raw.withUnsafeMutableBytes { dst in
                shuffled.withUnsafeBytes { src in
                    guard let sb = src.baseAddress, let db = dst.baseAddress else { return }
                    for e in info.entries where e.dtype == .f32 && e.byteLength > 0 {
                        byteUnshuffle(sb + e.offset, db + e.offset, e.byteLength / 4)
                    }
                }
            }
        }
        return Snapshot(entries: info.entries, payload: raw, metadata: info.metadata)
    }

    // MARK: zstd

    static func compress(_ raw: [UInt8], level: Int) throws -> [UInt8] {
        guard let cctx = ZSTD_createCCtx() else { throw CheckpointError.decompression("cannot create a zstd context") }
        defer { ZSTD_freeCCtx(cctx) }
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, Int32(level))
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1)
        // Two compression threads for large payloads (ignored by a single-threaded libzstd). The
        // output is the same for any worker count ≥ 1.
        if raw.count >= 4 << 20 { ZSTD_CCtx_setParameter(cctx, ZSTD_c_nbWorkers, 2) }
        let bound = ZSTD_compressBound(raw.count)
        var out = [UInt8](repeating: 0, count: bound)
        let n = out.withUnsafeMutableBytes { o in
            raw.withUnsafeBytes { i in ZSTD_compress2(cctx, o.baseAddress, bound, i.baseAddress, raw.count) }
        }
        if ZSTD_isError(n) != 0 { throw CheckpointError.decompression("zstd compression failed: " + String(cString: ZSTD_getErrorName(n))) }
        out.removeLast(bound - n)
        return out
    }

    static func decompress(_ b: [UInt8], _ start: Int, _ length: Int, expected: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: max(expected, 1))
        let n = out.withUnsafeMutableBytes { o in
            b.withUnsafeBytes { i -> Int in
                guard let base = i.baseAddress else { return -1 }
                let src = base + start
                let size = ZSTD_getFrameContentSize(src, length)
                if size != UInt64(expected) { return -1 }
                return ZSTD_decompress(o.baseAddress, expected, src, length)
            }
        }
        if n == -1 { throw CheckpointError.decompression("zstd frame size disagrees with the header") }
        if ZSTD_isError(n) != 0 { throw CheckpointError.decompression(String(cString: ZSTD_getErrorName(n))) }
        guard n == expected else { throw CheckpointError.decompression("decompressed \(n) bytes, expected \(expected)") }
        if expected == 0 { return [] }
        return out
    }

    // MARK: byte shuffle

    /// dst[k·n + i] = src[4i + k]: groups byte k of every float (exponents compress well).
    /// Large tensors are split between two threads (disjoint index ranges of every plane).
    static func byteShuffle(_ src: UnsafeRawPointer, _ dst: UnsafeMutableRawPointer, _ n: Int) {
        let s = src.assumingMemoryBound(to: UInt32.self), d = dst.assumingMemoryBound(to: UInt8.self)
        split(n) { r in
            let d0 = d, d1 = d + n, d2 = d + 2 &* n, d3 = d + 3 &* n
            for i in r {
                let v = UInt32(littleEndian: s[i])
                d0[i] = UInt8(truncatingIfNeeded: v); d1[i] = UInt8(truncatingIfNeeded: v &>> 8)
                d2[i] = UInt8(truncatingIfNeeded: v &>> 16); d3[i] = UInt8(truncatingIfNeeded: v &>> 24)
            }
        }
    }

    static func byteUnshuffle(_ src: UnsafeRawPointer, _ dst: UnsafeMutableRawPointer, _ n: Int) {
        let s = src.assumingMemoryBound(to: UInt8.self), d = dst.assumingMemoryBound(to: UInt32.self)
        split(n) { r in
            let s0 = s, s1 = s + n, s2 = s + 2 &* n, s3 = s + 3 &* n
            for i in r {
                let v = UInt32(s0[i]) | UInt32(s1[i]) &<< 8 | UInt32(s2[i]) &<< 16 | UInt32(s3[i]) &<< 24
                d[i] = UInt32(littleEndian: v)
            }
        }
    }

    private static func split(_ n: Int, _ body: (Range<Int>) -> Void) {
        if n < 1 << 18 { body(0 ..< n); return }
        DispatchQueue.concurrentPerform(iterations: 2) { part in body(part == 0 ? 0 ..< n / 2 : n / 2 ..< n) }
    }

    // MARK: little-endian helpers

    public static func crc(_ b: [UInt8], _ start: Int, _ end: Int) -> UInt32 {
        b.withUnsafeBytes { r in
            guard let base = r.baseAddress, start >= 0, end > start, end <= r.count else { return 0 }
            return UInt32(truncatingIfNeeded: crc32_z(0, base.assumingMemoryBound(to: UInt8.self) + start, end - start))
        }
    }
    static func put16(_ o: inout [UInt8], _ v: UInt16) { o.append(UInt8(v & 0xFF)); o.append(UInt8(v >> 8)) }
    static func put32(_ o: inout [UInt8], _ v: UInt32) { for i in 0 ..< 4 { o.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
    static func put64(_ o: inout [UInt8], _ v: UInt64) { for i in 0 ..< 8 { o.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
    static func get16(_ b: [UInt8], _ p: Int) -> UInt16 { UInt16(b[p]) | UInt16(b[p + 1]) << 8 }
    static func get32(_ b: [UInt8], _ p: Int) -> UInt32 { (0 ..< 4).reduce(0) { $0 | UInt32(b[p + $1]) << (8 * $1) } }
    static func get64(_ b: [UInt8], _ p: Int) -> UInt64 { (0 ..< 8).reduce(0) { $0 | UInt64(b[p + $1]) << (8 * $1) } }
}
