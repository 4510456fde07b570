// The dataset layer: CIFAR and IDX readers on real files (the CIFAR-10 test excerpt in
// shared/data, Debian's Fashion-MNIST), every malformed-input error, normalisation, and the
// batch assembly (order, normalisation, crop/flip) against a naive per-pixel reference.
import Engine
import Foundation
import Testing
import TestSupport

// MARK: - Fixtures

/// `shared/data/<name>`: from $PRUNED_SHARED_DIR, or `<repo>/../shared`. Records a test failure
/// and returns nil when it is not found.
private func sharedData(_ name: String) -> String? {
    var candidates: [String] = []
    if let dir = ProcessInfo.processInfo.environment["PRUNED_SHARED_DIR"], !dir.isEmpty {
        candidates.append(dir + "/data/" + name)
        candidates.append(dir + "/" + name)
    }
    let repo = URL(fileURLWithPath: packageRoot)
    candidates.append(repo.deletingLastPathComponent().appendingPathComponent("shared/data/\(name)").path)
    candidates.append(repo.appendingPathComponent("shared/data/\(name)").path)
    if let found = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) { return found }
    Issue.record("test data \(name) not found; looked in \(candidates). Set PRUNED_SHARED_DIR to the shared/ directory.")
    return nil
}

/// TestSupport's Fashion-MNIST directory (inside DataTests, `fashionMNIST` names a test).
private let fashionDirectory = TestSupport.fashionMNIST

/// Fashion-MNIST loaded once for all tests (the readers are what is tested).
private let fashion: Result<(train: ImageSet, test: ImageSet), Error> = Result {
    try DatasetLoader.load(.fashion_mnist, from: fashionDirectory)
}

private func fashionSets() -> (train: ImageSet, test: ImageSet)? {
    switch fashion {
    case .success(let sets): return sets
    case .failure(let error):
        Issue.record("Fashion-MNIST not loadable from \(fashionDirectory): \(error). Install it: apt-get install -y dataset-fashion-mnist")
        return nil
    }
}

private func cleanup(_ path: String) { try? FileManager.default.removeItem(atPath: path) }

private func write(_ bytes: [UInt8], _ path: String) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

private func bigEndian(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }

private func idxImages(count: Int, declared: Int? = nil, rows: UInt32 = 28, magic: UInt32 = 0x803) -> [UInt8] {
    var b = bigEndian(magic) + bigEndian(UInt32(declared ?? count)) + bigEndian(rows) + bigEndian(28)
    b += (0 ..< count * Int(rows) * 28).map { UInt8(truncatingIfNeeded: $0 * 7 + 1) }
    return b
}

private func idxLabels(_ labels: [UInt8]) -> [UInt8] { bigEndian(0x801) + bigEndian(UInt32(labels.count)) + labels }

private func cifarRecords(_ labels: [[UInt8]]) -> [UInt8] {
    var b: [UInt8] = []
    for (i, l) in labels.enumerated() { b += l + (0 ..< 3072).map { UInt8(truncatingIfNeeded: $0 &+ i * 13) } }
    return b
}

/// Runs a shell-free external program; returns false (and records why) if it failed.
@discardableResult
private func run(_ arguments: [String], stdout: String? = nil) -> Bool {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = arguments
    if let stdout {
        _ = FileManager.default.createFile(atPath: stdout, contents: nil)
        p.standardOutput = FileHandle(forWritingAtPath: stdout)
    }
    do { try p.run() } catch { Issue.record("cannot run \(arguments): \(error)"); return false }
    p.waitUntilExit()
    if p.terminationStatus != 0 { Issue.record("\(arguments) exited with \(p.terminationStatus)"); return false }
    return true
}

/// Expects `body` to throw a DatasetError naming `file` whose description contains every
/// fragment in `mentions` (case-insensitive).
private func expectDatasetError(file: String, mentions: [String], sourceLocation: SourceLocation = #_sourceLocation,
                                _ body: () throws -> Any) {
    do {
        _ = try body()
        Issue.record("expected a DatasetError about \(file)", sourceLocation: sourceLocation)
    } catch let error as DatasetError {
        #expect(error.file.hasSuffix(file), "error names \(error.file), expected \(file)", sourceLocation: sourceLocation)
        #expect(error.description.contains(file), sourceLocation: sourceLocation)
        for m in mentions {
            #expect(error.description.lowercased().contains(m.lowercased()),
                    "\"\(error.description)\" should mention \"\(m)\"", sourceLocation: sourceLocation)
        }
    } catch {
        Issue.record("expected a DatasetError, got \(type(of: error)): \(error)", sourceLocation: sourceLocation)
    }
}

/// Naive reference of one augmented, normalised sample: value at (c, y, x).
private func referenceSample(_ set: ImageSet, index: Int, norm: Normalisation, aug: Augmentation,
                             seed: UInt64, epoch: Int, position: Int) -> [Float] {
    var dy = 4, dx = 4, flip = false
    if aug.randomCrop || aug.horizontalFlip {
        var rng = CounterRNG(seed: seed, purpose: .augmentation, UInt64(epoch), UInt64(position))
        if aug.randomCrop { dy = rng.below(9); dx = rng.below(9) }
        if aug.horizontalFlip { flip = rng.below(2) == 1 }
    }
    var out = [Float](repeating: 0, count: 3072)
    for c in 0 ..< 3 { for y in 0 ..< 32 { for x in 0 ..< 32 {
        let xs = flip ? 31 - x : x
        let sy = y + dy - 4, sx = xs + dx - 4
        let p: UInt8 = (0 ..< 32).contains(sy) && (0 ..< 32).contains(sx)
            ? set.pixels[index * 3072 + c * 1024 + sy * 32 + sx] : 0
        out[c * 1024 + y * 32 + x] = (Float(p) / 255 - Float(norm.mean[c])) / Float(norm.std[c])
    } } }
    return out
}

private func assembled(_ set: ImageSet, _ indices: [Int], _ norm: Normalisation, _ aug: Augmentation,
                       seed: UInt64, epoch: Int, position: Int) -> (values: [Float], labels: [Int32]) {
    var out = [Float](repeating: .nan, count: indices.count * 3072)
    var labels = [Int32](repeating: -1, count: indices.count)
    out.withUnsafeMutableBufferPointer { o in
        labels.withUnsafeMutableBufferPointer { l in
            Batcher.assemble(set, indices: indices[...], normalisation: norm, augmentation: aug, seed: seed,
                             epoch: epoch, position: position, into: o.baseAddress!, labels: l.baseAddress!)
        }
    }
    return (out, labels)
}

/// Sample b of a channel-major batch of size B, as [3, 32, 32].
private func sample(_ values: [Float], b: Int, batch: Int) -> [Float] {
    var out: [Float] = []
    for c in 0 ..< 3 {
        let start = (c * batch + b) * 1024
        out += values[start ..< start + 1024]
    }
    return out
}

/// A synthetic set of `count` images with pixels in 1…255 (so zero padding is recognisable).
private func syntheticSet(count: Int, seed: UInt64) -> ImageSet {
    var rng = CounterRNG(seed: seed, purpose: .noise)
    let pixels = (0 ..< count * 3072).map { _ in UInt8(1 + rng.below(255)) }
    return ImageSet(pixels: pixels, labels: (0 ..< count).map { Int32($0 % 10) }, classes: 10)
}

// MARK: - Tests

@Suite struct DataTests {
    @Test func cifarReaderOnRealRecords() throws {
        guard let path = sharedData("cifar10_test_first20.bin") else { return }
        let set = try DatasetLoader.readCIFAR(file: path, labelBytes: 1, classes: 10)
        #expect(set.count == 20)
        #expect(set.classes == 10)
        #expect(set.labels == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1, 0, 9, 5, 7, 9, 8, 5, 7, 8, 6])
        let raw = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(raw.count == 20 * 3073)
        // Plane order R, G, B and row-major pixels, for a few records and positions.
        for (record, plane, y, x) in [(0, 0, 0, 0), (0, 1, 5, 7), (0, 2, 31, 31), (7, 0, 16, 3), (19, 2, 10, 30), (12, 1, 0, 31)] {
            let fileByte = raw[record * 3073 + 1 + plane * 1024 + y * 32 + x]
            #expect(set.pixels[record * 3072 + plane * 1024 + y * 32 + x] == fileByte)
        }
        // Every pixel, for good measure.
        for r in 0 ..< 20 { #expect(Array(set.pixels[r * 3072 ..< (r + 1) * 3072]) == Array(raw[r * 3073 + 1 ..< (r + 1) * 3073])) }
        // The planes really differ (a colour image), so plane order is observable.
        #expect(set.pixels[0 ..< 1024] != set.pixels[1024 ..< 2048])
        let first5 = set.prefix(5)
        #expect(first5.count == 5 && first5.labels == [3, 8, 8, 0, 6] && first5.pixels.count == 5 * 3072)
        #expect(set.prefix(100).count == 20 && set.prefix(-1).count == 0)
    }

    @Test func cifarLoaderDirectoryLayouts() throws {
        let dir = makeTempDir("data")
        defer { cleanup(dir) }
        // CIFAR-10 inside cifar-10-batches-bin, two records per file.
        let sub = dir + "/cifar-10-batches-bin"
        try FileManager.default.createDirectory(atPath: sub, withIntermediateDirectories: true)
        for k in 1 ... 5 { try write(cifarRecords([[UInt8(k)], [UInt8(k + 4)]]), sub + "/data_batch_\(k).bin") }
        try write(cifarRecords([[9], [0], [1]]), sub + "/test_batch.bin")
        let (train, test) = try DatasetLoader.load(.cifar10, from: dir)
        #expect(train.count == 10 && test.count == 3)
        #expect(train.labels == [1, 5, 2, 6, 3, 7, 4, 8, 5, 9])
        #expect(test.labels == [9, 0, 1])
        // A missing batch is named.
        try FileManager.default.removeItem(atPath: sub + "/data_batch_3.bin")
        expectDatasetError(file: "data_batch_3.bin", mentions: ["missing"]) { try DatasetLoader.load(.cifar10, from: dir) }
        expectDatasetError(file: "nowhere", mentions: ["not found"]) { try DatasetLoader.load(.cifar10, from: dir + "/nowhere") }

        // CIFAR-100: two label bytes, fine label used; directly in the directory.
        let c100 = dir + "/c100"
        try FileManager.default.createDirectory(atPath: c100, withIntermediateDirectories: true)
        try write(cifarRecords([[3, 99], [19, 42]]), c100 + "/train.bin")
        try write(cifarRecords([[0, 7]]), c100 + "/test.bin")
        let (t100, e100) = try DatasetLoader.load(.cifar100, from: c100)
        #expect(t100.labels == [99, 42] && e100.labels == [7] && t100.classes == 100)
        #expect(t100.pixels[0 ..< 3072] == cifarRecords([[3, 99]])[2...])
        try write(cifarRecords([[3, 100]]), c100 + "/test.bin")
        expectDatasetError(file: "test.bin", mentions: ["record 0", "expected 0…99"]) { try DatasetLoader.load(.cifar100, from: c100) }
    }

    @Test func malformedCIFAR() throws {
        let dir = makeTempDir("data")
        defer { cleanup(dir) }
        let truncated = dir + "/truncated.bin"
        try write(Array(cifarRecords([[1], [2]]).dropLast()), truncated)
        expectDatasetError(file: "truncated.bin", mentions: ["whole number", "3073", "6145"]) {
            try DatasetLoader.readCIFAR(file: truncated, labelBytes: 1, classes: 10)
        }
        let badLabel = dir + "/label10.bin"
        try write(cifarRecords([[1], [2], [10]]), badLabel)
        expectDatasetError(file: "label10.bin", mentions: ["record 2", "out of range", "expected 0…9"]) {
            try DatasetLoader.readCIFAR(file: badLabel, labelBytes: 1, classes: 10)
        }
        let empty = dir + "/empty.bin"
        try write([], empty)
        expectDatasetError(file: "empty.bin", mentions: ["empty"]) {
            try DatasetLoader.readCIFAR(file: empty, labelBytes: 1, classes: 10)
        }
        expectDatasetError(file: "absent.bin", mentions: ["missing"]) {
            try DatasetLoader.readCIFAR(file: dir + "/absent.bin", labelBytes: 1, classes: 10)
        }
        expectDatasetError(file: dir, mentions: ["directory"]) {
            try DatasetLoader.readCIFAR(file: dir, labelBytes: 1, classes: 10)
        }
    }

    @Test func malformedIDX() throws {
        let dir = makeTempDir("data")
        defer { cleanup(dir) }
        let images = dir + "/images", labels = dir + "/labels"
        try write(idxImages(count: 3), images)
        try write(idxLabels([1, 2, 3]), labels)
        let good = try DatasetLoader.readIDX(images: images, labels: labels)
        #expect(good.count == 3 && good.labels == [1, 2, 3])

        let badMagic = dir + "/train-images-idx3-ubyte"
        try write(idxImages(count: 3, magic: 0x801), badMagic)
        expectDatasetError(file: "train-images-idx3-ubyte", mentions: ["bad magic", "IDX images", "0x00000803"]) {
            try DatasetLoader.readIDX(images: badMagic, labels: labels)
        }
        // An image file given as the label file.
        expectDatasetError(file: "images", mentions: ["bad magic", "IDX labels", "0x00000801"]) {
            try DatasetLoader.readIDX(images: images, labels: images)
        }
        let truncated = dir + "/truncated-images"
        try write(Array(idxImages(count: 3).dropLast(5)), truncated)
        expectDatasetError(file: "truncated-images", mentions: ["truncated"]) {
            try DatasetLoader.readIDX(images: truncated, labels: labels)
        }
        let shortHeader = dir + "/short-header"
        try write(Array(idxImages(count: 3).prefix(10)), shortHeader)
        expectDatasetError(file: "short-header", mentions: ["truncated header"]) {
            try DatasetLoader.readIDX(images: shortHeader, labels: labels)
        }
        let dims = dir + "/dims"
        try write(idxImages(count: 3, rows: 27), dims)
        expectDatasetError(file: "dims", mentions: ["dimensions", "N×28×28"]) {
            try DatasetLoader.readIDX(images: dims, labels: labels)
        }
        let fewer = dir + "/fewer-labels"
        try write(idxLabels([1, 2]), fewer)
        expectDatasetError(file: "fewer-labels", mentions: ["count mismatch", "image count"]) {
            try DatasetLoader.readIDX(images: images, labels: fewer)
        }
        let label12 = dir + "/label12"
        try write(idxLabels([1, 12, 3]), label12)
        expectDatasetError(file: "label12", mentions: ["record 1", "out of range"]) {
            try DatasetLoader.readIDX(images: images, labels: label12)
        }
        let empty = dir + "/empty"
        try write([], empty)
        expectDatasetError(file: "empty", mentions: ["empty"]) { try DatasetLoader.readIDX(images: empty, labels: labels) }
        expectDatasetError(file: "no-such-file", mentions: ["missing"]) {
            try DatasetLoader.readIDX(images: images, labels: dir + "/no-such-file")
        }
    }

    @Test func gzipInputs() throws {
        let dir = makeTempDir("data")
        defer { cleanup(dir) }
        let images = dir + "/train-images-idx3-ubyte", labels = dir + "/train-labels-idx1-ubyte"
        try write(idxImages(count: 4), images)
        try write(idxLabels([0, 9, 4, 4]), labels)
        let raw = try DatasetLoader.readIDX(images: images, labels: labels)
        guard run(["gzip", "-k", "-9", images]), run(["gzip", "-k", labels]) else { return }
        let gz = try DatasetLoader.readIDX(images: images + ".gz", labels: labels + ".gz")
        #expect(gz.pixels == raw.pixels && gz.labels == raw.labels)

        // Two concatenated gzip members decode as one stream (like gunzip).
        let gzBytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: images + ".gz")))
        let whole = idxImages(count: 4)
        let split = dir + "/split"
        try write(Array(whole[..<1000]), split + "-a")
        try write(Array(whole[1000...]), split + "-b")
        guard run(["gzip", "-c", split + "-a"], stdout: split + "-a.gz"),
              run(["gzip", "-c", split + "-b"], stdout: split + "-b.gz") else { return }
        let members = [UInt8](try Data(contentsOf: URL(fileURLWithPath: split + "-a.gz")))
            + [UInt8](try Data(contentsOf: URL(fileURLWithPath: split + "-b.gz")))
        try write(members, split + ".gz")
        let joined = try DatasetLoader.readIDX(images: split + ".gz", labels: labels)
        #expect(joined.pixels == raw.pixels)

        // Corrupt deflate data inside a valid gzip header.
        var corrupt = gzBytes
        for i in 12 ..< min(40, corrupt.count - 8) { corrupt[i] ^= 0xA5 }
        try write(corrupt, dir + "/corrupt-images.gz")
        expectDatasetError(file: "corrupt-images.gz", mentions: ["corrupt gzip"]) {
            try DatasetLoader.readIDX(images: dir + "/corrupt-images.gz", labels: labels)
        }
        // Not gzip at all, but named .gz.
        try write(Array("hello, this is not gzip".utf8), dir + "/text-labels.gz")
        expectDatasetError(file: "text-labels.gz", mentions: ["corrupt gzip"]) {
            try DatasetLoader.readIDX(images: images, labels: dir + "/text-labels.gz")
        }
        // Truncated gzip stream.
        try write(Array(gzBytes.prefix(gzBytes.count / 2)), dir + "/half-images.gz")
        expectDatasetError(file: "half-images.gz", mentions: ["corrupt gzip", "truncated"]) {
            try DatasetLoader.readIDX(images: dir + "/half-images.gz", labels: labels)
        }
        // Trailing garbage after the stream.
        try write(gzBytes + [0x42, 0x43, 0x44], dir + "/tail-images.gz")
        expectDatasetError(file: "tail-images.gz", mentions: ["corrupt gzip", "trailing"]) {
            try DatasetLoader.readIDX(images: dir + "/tail-images.gz", labels: labels)
        }
        // An empty .gz file.
        try write([], dir + "/empty-labels.gz")
        expectDatasetError(file: "empty-labels.gz", mentions: ["empty"]) {
            try DatasetLoader.readIDX(images: images, labels: dir + "/empty-labels.gz")
        }
        // A gzip stream of a truncated IDX payload: the IDX error, not a gzip one.
        try write(Array(whole.dropLast(3)), dir + "/short")
        guard run(["gzip", dir + "/short"]) else { return }
        expectDatasetError(file: "short.gz", mentions: ["truncated"]) {
            try DatasetLoader.readIDX(images: dir + "/short.gz", labels: labels)
        }
    }

    @Test func fashionMNIST() throws {
        guard let (train, test) = fashionSets() else { return }
        #expect(train.count == 60000 && test.count == 10000)
        #expect(train.classes == 10 && train.pixels.count == 60000 * 3072 && train.labels.count == 60000)
        var perClass = [Int](repeating: 0, count: 10)
        for l in train.labels { perClass[Int(l)] += 1 }
        #expect(perClass == [Int](repeating: 6000, count: 10))
        var testPerClass = [Int](repeating: 0, count: 10)
        for l in test.labels { testPerClass[Int(l)] += 1 }
        #expect(testPerClass == [Int](repeating: 1000, count: 10))
        // The first training label of Fashion-MNIST is 9 (ankle boot), the first test label 9.
        #expect(train.labels[0] == 9 && test.labels[0] == 9)
        for set in [train, test] {
            var paddingNonZero = 0, planesDiffer = 0, interiorSum = 0
            set.pixels.withUnsafeBufferPointer { p in
                for i in 0 ..< set.count {
                    let img = i * 3072
                    for c in 0 ..< 3 {
                        for y in [0, 1, 30, 31] { for x in 0 ..< 32 where p[img + c * 1024 + y * 32 + x] != 0 { paddingNonZero += 1 } }
                        for y in 2 ..< 30 { for x in [0, 1, 30, 31] where p[img + c * 1024 + y * 32 + x] != 0 { paddingNonZero += 1 } }
                    }
                    for j in 0 ..< 1024 where p[img + j] != p[img + 1024 + j] || p[img + j] != p[img + 2048 + j] { planesDiffer += 1 }
                    for j in 0 ..< 1024 { interiorSum += Int(p[img + j]) }
                }
            }
            #expect(paddingNonZero == 0, "padding rows/columns must be zero")
            #expect(planesDiffer == 0, "grey must be replicated to 3 identical planes")
            #expect(interiorSum > 0)
        }
    }

    @Test func fashionRawAndGzipAgree() throws {
        let names = ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
        guard names.allSatisfy({ FileManager.default.fileExists(atPath: "\(fashionDirectory)/\($0).gz") }) else {
            Issue.record("Fashion-MNIST missing in \(fashionDirectory). Install it: apt-get install -y dataset-fashion-mnist")
            return
        }
        let dir = makeTempDir("data")
        defer { cleanup(dir) }
        for name in names {
            guard run(["gzip", "-dc", "\(fashionDirectory)/\(name).gz"], stdout: "\(dir)/\(name)") else { return }
        }
        let raw = try DatasetLoader.readIDX(images: "\(dir)/\(names[0])", labels: "\(dir)/\(names[1])")
        let gz = try DatasetLoader.readIDX(images: "\(fashionDirectory)/\(names[0]).gz", labels: "\(fashionDirectory)/\(names[1]).gz")
        #expect(raw.count == 10000 && gz.count == 10000)
        #expect(raw.pixels == gz.pixels)
        #expect(raw.labels == gz.labels)
        // The raw pixels are exactly the file's bytes inside the 2-pixel border.
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(dir)/\(names[0])")))
        for (i, y, x) in [(0, 10, 14), (9999, 27, 0), (1234, 13, 13)] {
            #expect(raw.pixels[i * 3072 + 2048 + (y + 2) * 32 + x + 2] == bytes[16 + i * 784 + y * 28 + x])
        }
    }

    @Test func normalisation() throws {
        #expect(Normalisation.cifar10.mean == [0.4914, 0.4822, 0.4465] && Normalisation.cifar10.std == [0.2023, 0.1994, 0.2010])
        #expect(Normalisation.cifar100.mean == [0.5071, 0.4867, 0.4408] && Normalisation.cifar100.std == [0.2675, 0.2565, 0.2761])
        // Hand case: one image, channel R all 0 except 256 pixels at 255 → mean 0.25, std √(3/16).
        var pixels = [UInt8](repeating: 51, count: 3072)
        for j in 0 ..< 1024 { pixels[j] = j < 256 ? 255 : 0 }
        let n = Normalisation.computed(from: ImageSet(pixels: pixels, labels: [0], classes: 10))
        #expect(abs(n.mean[0] - 0.25) < 1e-12 && abs(n.std[0] - (3.0 / 16).squareRoot()) < 1e-12)
        #expect(abs(n.mean[1] - 0.2) < 1e-12 && n.std[1] == 1)   // constant channel: std 1, not 0
        // Decoding validates.
        let json = try JSONEncoder().encode(Normalisation.cifar10)
        #expect(try JSONDecoder().decode(Normalisation.self, from: json) == .cifar10)
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(Normalisation.self, from: Data(#"{"mean":[0.5],"std":[0.2,0.2,0.2]}"#.utf8))
        }
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(Normalisation.self, from: Data(#"{"mean":[0.5,0.5,0.5],"std":[0.2,0,0.2]}"#.utf8))
        }

        guard let (train, _) = fashionSets() else { return }
        let f = Normalisation.computed(from: train)
        #expect(f.mean[0] > 0.2 && f.mean[0] < 0.3, "mean \(f.mean)")
        #expect(f.std[0] > 0.25 && f.std[0] < 0.4, "std \(f.std)")
        #expect(f.mean[0] == f.mean[1] && f.mean[1] == f.mean[2] && f.std[0] == f.std[1] && f.std[1] == f.std[2])
        // Padding dilutes the unpadded Fashion-MNIST mean 0.2860 by 784/1024.
        #expect(abs(f.mean[0] - 0.2860 * 784 / 1024) < 0.001, "mean \(f.mean[0])")
    }

    @Test func order() {
        let a = Batcher.order(count: 1000, seed: 42, epoch: 3)
        #expect(a.sorted() == Array(0 ..< 1000))
        #expect(a == Batcher.order(count: 1000, seed: 42, epoch: 3))
        #expect(a != Batcher.order(count: 1000, seed: 42, epoch: 4))
        #expect(a != Batcher.order(count: 1000, seed: 43, epoch: 3))
        var rng = CounterRNG(seed: 42, purpose: .shuffle, 3)
        #expect(a == rng.permutation(1000))
        #expect(a != Array(0 ..< 1000))
        #expect(Batcher.order(count: 0, seed: 1, epoch: 0).isEmpty && Batcher.order(count: 1, seed: 1, epoch: 0) == [0])
    }

    @Test func assembleWithoutAugmentation() {
        let set = syntheticSet(count: 7, seed: 5)
        let indices = [6, 0, 3, 3]
        let norm = Normalisation.cifar10
        let (values, labels) = assembled(set, indices, norm, .none, seed: 1, epoch: 0, position: 0)
        #expect(labels == indices.map { set.labels[$0] })
        let batch = indices.count
        var mismatches = 0
        for (b, index) in indices.enumerated() { for c in 0 ..< 3 { for j in 0 ..< 1024 {
            let p = set.pixels[index * 3072 + c * 1024 + j]
            let expected = (Float(p) / 255 - Float(norm.mean[c])) / Float(norm.std[c])
            if values[c * batch * 1024 + b * 1024 + j] != expected { mismatches += 1 }
        } } }
        #expect(mismatches == 0)
        // A slice that does not start at 0, and a different position/epoch: no randomness used.
        let all = Array(0 ..< 7)
        let sliced = assembled(set, Array(all[2 ..< 5]), norm, .none, seed: 9, epoch: 5, position: 77)
        let direct = assembled(set, [2, 3, 4], norm, .none, seed: 1, epoch: 0, position: 0)
        #expect(sliced.values == direct.values)
        var out = [Float](repeating: 0, count: 3 * 3072), lab = [Int32](repeating: 0, count: 3)
        out.withUnsafeMutableBufferPointer { o in lab.withUnsafeMutableBufferPointer { l in
            Batcher.assemble(set, indices: all[2 ..< 5], normalisation: norm, augmentation: .none, seed: 1, epoch: 0,
                             position: 0, into: o.baseAddress!, labels: l.baseAddress!)
        } }
        #expect(out == direct.values && lab == [2, 3, 4])
    }

    @Test func assembleWithAugmentation() {
        let set = syntheticSet(count: 40, seed: 11)
        let order = Batcher.order(count: 40, seed: 8, epoch: 2)
        let indices = Array(order[8 ..< 40])
        let norm = Normalisation.cifar100
        let batch = indices.count
        let first = assembled(set, indices, norm, .cropAndFlip, seed: 8, epoch: 2, position: 8)
        let again = assembled(set, indices, norm, .cropAndFlip, seed: 8, epoch: 2, position: 8)
        #expect(first.values == again.values && first.labels == again.labels)
        #expect(!first.values.contains { $0.isNaN })
        let otherEpoch = assembled(set, indices, norm, .cropAndFlip, seed: 8, epoch: 3, position: 8)
        #expect(otherEpoch.values != first.values)

        // Exact agreement with the naive reference for every sample.
        for (b, index) in indices.enumerated() {
            let ref = referenceSample(set, index: index, norm: norm, aug: .cropAndFlip, seed: 8, epoch: 2, position: 8 + b)
            #expect(sample(first.values, b: b, batch: batch) == ref, "sample \(b)")
        }
        // Each sample is some crop (shift ≤ 4 each way) with or without flip; both flips and
        // several shifts occur across the batch; zero padding reads (0 − mean)/std.
        var flips = 0, shifts = Set<[Int]>()
        var sawPadding = false
        for (b, index) in indices.enumerated() {
            let got = sample(first.values, b: b, batch: batch)
            var matches: [(Int, Int, Bool)] = []
            for dy in 0 ..< 9 { for dx in 0 ..< 9 { for flip in [false, true] {
                if candidate(set, index, norm, dy, dx, flip) == got { matches.append((dy, dx, flip)) }
            } } }
            #expect(matches.count == 1, "sample \(b) matches \(matches.count) crops")
            guard let m = matches.first else { continue }
            if m.2 { flips += 1 }
            shifts.insert([m.0 - 4, m.1 - 4])
            if m.0 != 4 || m.1 != 4 {
                for c in 0 ..< 3 {
                    let padValue = (Float(0) / 255 - Float(norm.mean[c])) / Float(norm.std[c])
                    // Row 0 is padding when dy < 4; column 0 (or 31 if flipped) when dx < 4.
                    if m.0 < 4 { #expect(got[c * 1024] == padValue && got[c * 1024 + 31] == padValue); sawPadding = true }
                    if m.0 > 4 { #expect(got[c * 1024 + 31 * 32] == padValue); sawPadding = true }
                }
            }
        }
        #expect(flips > 4 && flips < batch - 4, "flips \(flips) of \(batch)")
        #expect(shifts.count > 10, "distinct shifts \(shifts.count)")
        #expect(shifts.allSatisfy { abs($0[0]) <= 4 && abs($0[1]) <= 4 })
        #expect(sawPadding)

        // Flip alone keeps the geometry; crop alone never mirrors.
        let flipOnly = assembled(set, indices, norm, Augmentation(randomCrop: false, horizontalFlip: true), seed: 8, epoch: 2, position: 8)
        let cropOnly = assembled(set, indices, norm, Augmentation(randomCrop: true, horizontalFlip: false), seed: 8, epoch: 2, position: 8)
        for (b, index) in indices.enumerated() {
            let f = sample(flipOnly.values, b: b, batch: batch), c = sample(cropOnly.values, b: b, batch: batch)
            #expect(f == candidate(set, index, norm, 4, 4, false) || f == candidate(set, index, norm, 4, 4, true))
            #expect(c == referenceSample(set, index: index, norm: norm, aug: Augmentation(randomCrop: true, horizontalFlip: false),
                                         seed: 8, epoch: 2, position: 8 + b))
        }
    }

    @Test func imageSetInitialiser() {
        let s = ImageSet(pixels: [UInt8](repeating: 1, count: 2 * 3072 + 5), labels: [1, 2, 3], classes: 10)
        #expect(s.count == 2 && s.pixels.count == 2 * 3072 && s.labels == [1, 2])
        #expect(DatasetKind.allCases.map(\.classes) == [10, 100, 10, 10])
        #expect(DatasetError(file: "f.gz", problem: "bad").description == "f.gz: bad")
    }
}

/// The sample `index` cropped at (dy, dx) from the 4-padded image, optionally mirrored.
private func candidate(_ set: ImageSet, _ index: Int, _ norm: Normalisation, _ dy: Int, _ dx: Int, _ flip: Bool) -> [Float] {
    var out = [Float](repeating: 0, count: 3072)
    for c in 0 ..< 3 { for y in 0 ..< 32 { for x in 0 ..< 32 {
        let sy = y + dy - 4, sx = (flip ? 31 - x : x) + dx - 4
        let p: UInt8 = (0 ..< 32).contains(sy) && (0 ..< 32).contains(sx) ? set.pixels[index * 3072 + c * 1024 + sy * 32 + sx] : 0
        out[c * 1024 + y * 32 + x] = (Float(p) / 255 - Float(norm.mean[c])) / Float(norm.std[c])
    } } }
    return out
}
