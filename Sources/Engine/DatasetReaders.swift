// Parsers for the on-disk dataset formats: CIFAR binary records and IDX (MNIST-style) files,
// raw or gzipped (zlib streaming inflate). Every defect in a file becomes a DatasetError that
// names the file and the problem; nothing here traps on input. The messages say what was
// expected and never print values read from the file (magic numbers, header fields, labels):
// they reach clients of the daemon, who must not learn a file's contents through them.
import CZlib
import Foundation

extension DatasetLoader {
    /// Reads a CIFAR binary file: records of `labelBytes` label bytes (the last one is the
    /// label used: CIFAR-100's fine label) followed by 3072 pixel bytes (R, G, B planes).
    public static func readCIFAR(file: String, labelBytes: Int, classes: Int) throws -> ImageSet {
        guard labelBytes >= 1, labelBytes <= 16, classes >= 1, classes <= 256 else {
            throw DatasetError(file: file, problem:
                "invalid CIFAR reader arguments: labelBytes \(labelBytes), classes \(classes)")
        }
        let bytes = try readFile(file)
        let recordSize = labelBytes + ImageSet.imageBytes
        if bytes.isEmpty { throw DatasetError(file: file, problem: "empty file (expected \(recordSize)-byte records)") }
        let (count, rest) = bytes.count.quotientAndRemainder(dividingBy: recordSize)
        guard rest == 0 else {
            throw DatasetError(file: file, problem:
                "wrong size: \(bytes.count) bytes is not a whole number of \(recordSize)-byte records (\(count) records + \(rest) bytes)")
        }
        var pixels = [UInt8](repeating: 0, count: count * ImageSet.imageBytes)
        var labels = [Int32](repeating: 0, count: count)
        var bad: Int? = nil
        bytes.withUnsafeBufferPointer { inBuf in
            let src = inBuf.baseAddress!
            pixels.withUnsafeMutableBufferPointer { pxBuf in
                let dst = pxBuf.baseAddress!
                labels.withUnsafeMutableBufferPointer { lbBuf in
                    for i in 0 ..< count {
                        let record = src + i &* recordSize
                        let label = record[labelBytes &- 1]
                        if Int(label) >= classes { bad = i; return }
                        lbBuf[i] = Int32(label)
                        (dst + i &* ImageSet.imageBytes).update(from: record + labelBytes, count: ImageSet.imageBytes)
                    }
                }
            }
        }
        if let bad {
            throw DatasetError(file: file, problem: "label out of range in record \(bad): expected 0…\(classes - 1)")
        }
        return ImageSet(pixels: pixels, labels: labels, classes: classes)
    }

    /// Reads an IDX image file (magic 0x00000803, dims N×28×28) and an IDX label file (magic
    /// 0x00000801, dim N, labels 0…9), each raw or gzipped, into 32×32 images (2-pixel zero
    /// border) with the grey plane replicated to R, G and B.
    public static func readIDX(images: String, labels: String) throws -> ImageSet {
        let imageBytes = try readMaybeGzip(images)
        let imageDims = try idxHeader(imageBytes, file: images, magic: 0x0000_0803, what: "IDX images", dimensions: 3)
        let n = imageDims[0]
        guard imageDims[1] == 28, imageDims[2] == 28 else {
            throw DatasetError(file: images, problem: "wrong IDX dimensions: expected N×28×28 images")
        }
        let labelBytes = try readMaybeGzip(labels)
        let labelDims = try idxHeader(labelBytes, file: labels, magic: 0x0000_0801, what: "IDX labels", dimensions: 1)
        guard labelDims[0] == n else {
            throw DatasetError(file: labels, problem:
                "count mismatch: the header's label count differs from the image count of \((images as NSString).lastPathComponent)")
        }
        try expectPayload(imageBytes, file: images, header: 16, count: n, itemBytes: 784, what: "images of 28×28 bytes")
        try expectPayload(labelBytes, file: labels, header: 8, count: n, itemBytes: 1, what: "labels")

        var out = [Int32](repeating: 0, count: n)
        var bad: Int? = nil
        labelBytes.withUnsafeBufferPointer { lb in
            for i in 0 ..< n {
                let v = lb[8 &+ i]
                if v >= 10 { bad = i; break }
                out[i] = Int32(v)
            }
        }
        if let bad {
            throw DatasetError(file: labels, problem: "label out of range in record \(bad): expected 0…9")
        }
        var pixels = [UInt8](repeating: 0, count: n * ImageSet.imageBytes)
        imageBytes.withUnsafeBufferPointer { inBuf in
            let src = inBuf.baseAddress! + 16
            pixels.withUnsafeMutableBufferPointer { pxBuf in
                let dst = pxBuf.baseAddress!
                for i in 0 ..< n {
                    let image = src + i &* 784
                    let target = dst + i &* ImageSet.imageBytes
                    for c in 0 ..< 3 {
                        let plane = target + c &* 1024
                        for r in 0 ..< 28 {
                            (plane + ((r &+ 2) &* 32 &+ 2)).update(from: image + r &* 28, count: 28)
                        }
                    }
                }
            }
        }
        return ImageSet(pixels: pixels, labels: out, classes: 10)
    }

    // MARK: - IDX helpers

    /// Checks the magic and returns the dimensions of an IDX header.
    private static func idxHeader(_ bytes: [UInt8], file: String, magic: UInt32, what: String,
                                  dimensions: Int) throws -> [Int] {
        let headerSize = 4 + 4 * dimensions
        if bytes.isEmpty { throw DatasetError(file: file, problem: "empty file (expected \(what))") }
        guard bytes.count >= 4 else {
            throw DatasetError(file: file, problem: "truncated header: \(bytes.count) bytes, need \(headerSize) (\(what))")
        }
        guard bigEndian32(bytes, 0) == magic else {
            throw DatasetError(file: file, problem: "bad magic: expected \(what), which start with \(hex(magic))")
        }
        guard bytes.count >= headerSize else {
            throw DatasetError(file: file, problem: "truncated header: \(bytes.count) bytes, need \(headerSize) (\(what))")
        }
        return (0 ..< dimensions).map { Int(bigEndian32(bytes, 4 + 4 * $0)) }
    }

    private static func expectPayload(_ bytes: [UInt8], file: String, header: Int, count: Int, itemBytes: Int,
                                      what: String) throws {
        let expected = count * itemBytes
        let payload = bytes.count - header
        if payload < expected {
            throw DatasetError(file: file, problem:
                "truncated: the payload after the header has \(payload) bytes, fewer than the header's count of \(what) needs")
        }
        if payload > expected {
            throw DatasetError(file: file, problem:
                "wrong size: the payload after the header has \(payload) bytes, more than the header's count of \(what) needs")
        }
        if count == 0 { throw DatasetError(file: file, problem: "no records (the header's count of \(what) is zero)") }
    }

    private static func bigEndian32(_ b: [UInt8], _ at: Int) -> UInt32 {
        UInt32(b[at]) << 24 | UInt32(b[at + 1]) << 16 | UInt32(b[at + 2]) << 8 | UInt32(b[at + 3])
    }

    private static func hex(_ v: UInt32) -> String {
        let s = String(v, radix: 16)
        return "0x" + String(repeating: "0", count: max(0, 8 - s.count)) + s
    }

    // MARK: - Files

    /// The whole file, or a DatasetError (missing, a directory, unreadable).
    static func readFile(_ path: String) throws -> [UInt8] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw DatasetError(file: path, problem: "missing file")
        }
        if isDirectory.boolValue { throw DatasetError(file: path, problem: "is a directory, expected a file") }
        do {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            return [UInt8](data)
        } catch {
            throw DatasetError(file: path, problem: "cannot read: \(error.localizedDescription)")
        }
    }

    /// The file's bytes, inflated when it is gzip (name ends in .gz, or gzip magic 1f 8b).
    static func readMaybeGzip(_ path: String) throws -> [UInt8] {
        let bytes = try readFile(path)
        let gzipMagic = bytes.count >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B
        if path.hasSuffix(".gz") || gzipMagic { return try gunzip(bytes, file: path) }
        return bytes
    }

    /// Decompresses a gzip (or zlib) stream with streaming inflate, growing the output as
    /// needed, up to `limit` bytes. Concatenated gzip members are joined; trailing zero bytes
    /// are ignored; anything else after the stream is an error.
    static func gunzip(_ input: [UInt8], file: String, limit: Int = 1 << 31) throws -> [UInt8] {
        if input.isEmpty { throw DatasetError(file: file, problem: "corrupt gzip: empty file") }
        var stream = z_stream()
        let initStatus = inflateInit2_(&stream, 15 + 32, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard initStatus == Z_OK else {
            throw DatasetError(file: file, problem: "cannot initialise zlib inflate (code \(initStatus))")
        }
        defer { inflateEnd(&stream) }

        // Initial size: the gzip trailer's ISIZE (size mod 2^32 of the last member) if it is
        // plausible (deflate expands at most ~1032×), else a multiple of the input.
        var hint = 4 * input.count
        if input.count >= 18 {
            let n = input.count
            let isize = Int(UInt32(input[n - 4]) | UInt32(input[n - 3]) << 8 | UInt32(input[n - 2]) << 16 | UInt32(input[n - 1]) << 24)
            if isize > 0, isize <= 1032 * input.count { hint = isize }
        }
        var output = [UInt8](repeating: 0, count: max(1024, min(hint, limit)))
        var produced = 0
        var fed = 0   // input bytes handed to zlib so far (some may still be in avail_in)

        func fail(_ what: String) -> DatasetError {
            let detail = stream.msg.map { String(cString: $0) }
            return DatasetError(file: file, problem: "corrupt gzip: " + (detail.map { "\(what) (\($0))" } ?? what))
        }

        try input.withUnsafeBufferPointer { inBuf in
            let base = UnsafeMutablePointer(mutating: inBuf.baseAddress!)
            while true {
                if stream.avail_in == 0 && fed < input.count {
                    let chunk = min(input.count - fed, 1 << 30)
                    stream.next_in = base + fed
                    stream.avail_in = UInt32(chunk)
                    fed += chunk
                }
                if produced == output.count {
                    let grown = min(limit, output.count * 2)
                    guard grown > output.count else {
                        throw DatasetError(file: file, problem: "decompressed data exceeds \(limit) bytes")
                    }
                    output.append(contentsOf: repeatElement(0, count: grown - output.count))
                }
                let status: Int32 = output.withUnsafeMutableBufferPointer { out in
                    let room = min(out.count - produced, 1 << 30)
                    stream.next_out = out.baseAddress! + produced
                    stream.avail_out = UInt32(room)
                    let s = inflate(&stream, Z_NO_FLUSH)
                    produced += room - Int(stream.avail_out)
                    return s
                }
                switch status {
                case Z_OK:
                    continue
                case Z_STREAM_END:
                    let position = fed - Int(stream.avail_in)
                    if position == input.count { return }
                    if input.count - position >= 2 && input[position] == 0x1F && input[position + 1] == 0x8B {
                        guard inflateReset(&stream) == Z_OK else { throw fail("cannot restart for the next member") }
                        continue
                    }
                    if input[position...].allSatisfy({ $0 == 0 }) { return }
                    throw DatasetError(file: file, problem:
                        "corrupt gzip: \(input.count - position) bytes of trailing garbage after the compressed stream")
                case Z_BUF_ERROR:
                    if stream.avail_out == 0 { continue }   // output full: grow and retry
                    if stream.avail_in == 0 && fed == input.count {
                        throw fail("unexpected end of compressed data (truncated file?)")
                    }
                    throw fail("inflate made no progress")
                case Z_NEED_DICT:
                    throw fail("stream needs a preset dictionary")
                case Z_MEM_ERROR:
                    throw DatasetError(file: file, problem: "out of memory while decompressing")
                default:
                    throw fail("invalid compressed data")
                }
            }
        }
        output.removeSubrange(produced...)
        return output
    }
}
