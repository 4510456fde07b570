// The dataset layer: in-memory uint8 image sets in one CIFAR-shaped layout [N, 3, 32, 32],
// their normalisation constants, the loader front door, and the per-step batch assembly
// (shuffle order, RandomCrop(32, padding 4) + horizontal flip, normalisation) that writes
// channel-major [3, B, 32, 32] floats. File parsing lives in DatasetReaders.swift.
import Foundation

public enum DatasetKind: String, Codable, Sendable, CaseIterable {
    case cifar10, cifar100, fashion_mnist, mnist

    /// Number of label classes.
    public var classes: Int { self == .cifar100 ? 100 : 10 }
}

/// A malformed or missing dataset file: which file, and what is wrong with it.
public struct DatasetError: Error, CustomStringConvertible, Equatable {
    public let file: String
    public let problem: String

    public init(file: String, problem: String) {
        self.file = file
        self.problem = problem
    }

    public var description: String { "\(file): \(problem)" }
}

/// An in-memory labelled image set, uint8 pixels [N, 3, 32, 32] (planes R, G, B; grey images
/// replicated to 3 planes, 28×28 images padded by 2 zero pixels on every side), labels Int32.
public final class ImageSet: @unchecked Sendable {
    /// Bytes per image: 3 planes of 32×32.
    public static let imageBytes = 3 * 32 * 32

    public let count: Int
    public let classes: Int
    public let pixels: [UInt8]
    public let labels: [Int32]

    /// `count` is `labels.count`; should `pixels` not hold exactly `count` images, both arrays
    /// are cut to the number of complete images they agree on (the readers never do this).
    public init(pixels: [UInt8], labels: [Int32], classes: Int) {
        let n = min(labels.count, pixels.count / ImageSet.imageBytes)
        count = n
        self.classes = classes
        self.pixels = pixels.count == n * ImageSet.imageBytes ? pixels : Array(pixels.prefix(n * ImageSet.imageBytes))
        self.labels = labels.count == n ? labels : Array(labels.prefix(n))
    }

    /// The first `n` samples (n clamped to 0…count).
    public func prefix(_ n: Int) -> ImageSet {
        let k = max(0, min(n, count))
        if k == count { return self }
        return ImageSet(pixels: Array(pixels.prefix(k * ImageSet.imageBytes)), labels: Array(labels.prefix(k)),
                        classes: classes)
    }
}

/// Per-channel (R, G, B) mean and standard deviation applied after scaling pixels to [0, 1].
public struct Normalisation: Sendable, Equatable, Codable {
    public var mean: [Double]
    public var std: [Double]

    public init(mean: [Double], std: [Double]) {
        self.mean = mean
        self.std = std
    }

    public static let cifar10 = Normalisation(mean: [0.4914, 0.4822, 0.4465], std: [0.2023, 0.1994, 0.2010])
    public static let cifar100 = Normalisation(mean: [0.5071, 0.4867, 0.4408], std: [0.2675, 0.2565, 0.2761])

    private enum CodingKeys: String, CodingKey { case mean, std }

    /// Decoding rejects anything but 3 finite means and 3 finite positive standard deviations.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let mean = try c.decode([Double].self, forKey: .mean)
        let std = try c.decode([Double].self, forKey: .std)
        guard mean.count == 3, std.count == 3, mean.allSatisfy(\.isFinite),
              std.allSatisfy({ $0.isFinite && $0 > 0 }) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                debugDescription: "normalisation needs 3 finite means and 3 finite positive stds, got mean \(mean) std \(std)"))
        }
        self.mean = mean
        self.std = std
    }

    /// Per-channel mean and population std of pixel/255 over every pixel of the (padded)
    /// 32×32 images, in Double, via exact 256-bin histograms. An empty set gives mean 0 and
    /// std 1; a channel of constant value gets std 1 (instead of a division by zero later).
    public static func computed(from set: ImageSet) -> Normalisation {
        guard set.count > 0 else { return Normalisation(mean: [0, 0, 0], std: [1, 1, 1]) }
        var histogram = [Int](repeating: 0, count: 3 * 256)
        histogram.withUnsafeMutableBufferPointer { h in
            let hp = h.baseAddress!
            set.pixels.withUnsafeBufferPointer { px in
                let src = px.baseAddress!
                for i in 0 ..< set.count {
                    for c in 0 ..< 3 {
                        let plane = src + (i &* 3 &+ c) &* 1024
                        let bins = hp + c &* 256
                        for j in 0 ..< 1024 { bins[Int(plane[j])] &+= 1 }
                    }
                }
            }
        }
        let total = Double(set.count * 1024)
        var mean = [Double](), std = [Double]()
        for c in 0 ..< 3 {
            var sum = 0.0
            for v in 0 ..< 256 { sum += Double(histogram[c * 256 + v]) * (Double(v) / 255) }
            let m = sum / total
            var squares = 0.0
            for v in 0 ..< 256 {
                let d = Double(v) / 255 - m
                squares += Double(histogram[c * 256 + v]) * d * d
            }
            let s = (squares / total).squareRoot()
            mean.append(m)
            std.append(s > 0 ? s : 1)
        }
        return Normalisation(mean: mean, std: std)
    }
}

/// Training-set augmentation (docs/EXPERIMENTS.md §3): RandomCrop(32, padding 4, zero fill), then
/// RandomHorizontalFlip(p = 0.5).
public struct Augmentation: Sendable, Equatable, Codable {
    public var randomCrop: Bool
    public var horizontalFlip: Bool

    public init(randomCrop: Bool, horizontalFlip: Bool) {
        self.randomCrop = randomCrop
        self.horizontalFlip = horizontalFlip
    }

    public static let none = Augmentation(randomCrop: false, horizontalFlip: false)
    public static let cropAndFlip = Augmentation(randomCrop: true, horizontalFlip: true)
}

public enum Batcher {
    /// The epoch's sample order, a pure function of (seed, epoch).
    public static func order(count: Int, seed: UInt64, epoch: Int) -> [Int] {
        guard count > 0 else { return [] }
        var rng = CounterRNG(seed: seed, purpose: .shuffle, UInt64(truncatingIfNeeded: epoch))
        return rng.permutation(count)
    }

    /// Writes samples `indices` of `set` into `out` as channel-major [3, B, 32, 32]
    /// (B = indices.count): out[c·B·1024 + b·1024 + y·32 + x] = (p/255 − mean[c]) / std[c],
    /// computed in Float, and their labels into `labels`.
    ///
    /// The sample at position `position + b` of the epoch draws from its own stream
    /// CounterRNG(seed, .augmentation, epoch, position + b): dy = below(9), dx = below(9) when
    /// `randomCrop` (offsets into the zero-padded 40×40 image), then flip = below(2) == 1 when
    /// `horizontalFlip`. Disabled augmentations draw nothing.
    ///
    /// Every index must lie in 0..<set.count (checked per sample: an out-of-range index is a
    /// programming error, never a consequence of file contents).
    public static func assemble(_ set: ImageSet, indices: ArraySlice<Int>, normalisation: Normalisation,
                                augmentation: Augmentation, seed: UInt64, epoch: Int, position: Int,
                                into out: UnsafeMutablePointer<Float>, labels: UnsafeMutablePointer<Int32>) {
        let batch = indices.count
        guard batch > 0 else { return }
        let planeStride = batch &* 1024
        let crop = augmentation.randomCrop, flip = augmentation.horizontalFlip
        let epochKey = UInt64(truncatingIfNeeded: epoch)

        withUnsafeTemporaryAllocation(of: Float.self, capacity: 3 * 256) { table in
            // Lookup table per channel: value of every possible byte, the exact Float formula.
            let lut = table.baseAddress!
            for c in 0 ..< 3 {
                let mean = Float(c < normalisation.mean.count ? normalisation.mean[c] : 0)
                let std = Float(c < normalisation.std.count ? normalisation.std[c] : 1)
                for p in 0 ..< 256 { lut[c &* 256 &+ p] = (Float(p) / 255 - mean) / std }
            }
            set.pixels.withUnsafeBufferPointer { px in
                guard let source = px.baseAddress else { return }
                set.labels.withUnsafeBufferPointer { lb in
                    for (b, index) in indices.enumerated() {
                        precondition(index >= 0 && index < set.count, "sample index \(index) outside 0..<\(set.count)")
                        labels[b] = lb[index]
                        var dy = 4, dx = 4, mirrored = false
                        if crop || flip {
                            var rng = CounterRNG(seed: seed, purpose: .augmentation, epochKey,
                                                 UInt64(truncatingIfNeeded: position &+ b))
                            if crop { dy = rng.below(9); dx = rng.below(9) }
                            if flip { mirrored = rng.below(2) == 1 }
                        }
                        let image = source + index &* ImageSet.imageBytes
                        for c in 0 ..< 3 {
                            let src = image + c &* 1024
                            let dst = out + (c &* planeStride &+ b &* 1024)
                            let values = lut + c &* 256
                            if dy == 4 && dx == 4 && !mirrored {
                                for j in 0 ..< 1024 { dst[j] = values[Int(src[j])] }
                            } else {
                                writeShifted(src, dst, values, dy: dy, dx: dx, mirrored: mirrored)
                            }
                        }
                    }
                }
            }
        }
    }

    /// One 32×32 plane cropped at (dy, dx) from the image zero-padded by 4, optionally mirrored.
    /// Output (y, x) takes source (y + dy − 4, x + dx − 4) before mirroring; outside → value of 0.
    @inline(__always)
    private static func writeShifted(_ src: UnsafePointer<UInt8>, _ dst: UnsafeMutablePointer<Float>,
                                     _ values: UnsafePointer<Float>, dy: Int, dx: Int, mirrored: Bool) {
        let pad = values[0]
        let lo = max(0, 4 &- dx), hi = min(32, 36 &- dx)   // output columns with a source pixel
        let shift = dx &- 4
        for y in 0 ..< 32 {
            let row = dst + y &* 32
            let sy = y &+ dy &- 4
            if sy < 0 || sy >= 32 {
                row.update(repeating: pad, count: 32)
                continue
            }
            let srow = src + (sy &* 32 &+ shift)
            if mirrored {
                for x in 0 ..< lo { row[31 &- x] = pad }
                for x in hi ..< 32 { row[31 &- x] = pad }
                for x in lo ..< hi { row[31 &- x] = values[Int(srow[x])] }
            } else {
                for x in 0 ..< lo { row[x] = pad }
                for x in hi ..< 32 { row[x] = pad }
                for x in lo ..< hi { row[x] = values[Int(srow[x])] }
            }
        }
    }
}

public enum DatasetLoader {
    /// Loads the train and test sets of `kind` from directory `path`.
    /// - cifar10: data_batch_1.bin … data_batch_5.bin and test_batch.bin, in `path` or in
    ///   `path/cifar-10-batches-bin`.
    /// - cifar100: train.bin and test.bin (fine labels), in `path` or `path/cifar-100-binary`.
    /// - fashion_mnist / mnist: train-images-idx3-ubyte, train-labels-idx1-ubyte,
    ///   t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each raw or gzipped (`.gz`); the raw
    ///   file is preferred when both exist.
    public static func load(_ kind: DatasetKind, from path: String) throws -> (train: ImageSet, test: ImageSet) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw DatasetError(file: path, problem: "dataset directory not found")
        }
        guard isDirectory.boolValue else {
            throw DatasetError(file: path, problem: "not a directory (expected the \(kind.rawValue) dataset directory)")
        }
        switch kind {
        case .cifar10:
            let dir = resolve(path, subdirectory: "cifar-10-batches-bin", marker: "test_batch.bin")
            let names = (1 ... 5).map { "data_batch_\($0).bin" }
            for name in names + ["test_batch.bin"] {
                let file = join(dir, name)
                if !FileManager.default.fileExists(atPath: file) {
                    throw DatasetError(file: file, problem:
                        "missing file (CIFAR-10 needs data_batch_1.bin … data_batch_5.bin and test_batch.bin)")
                }
            }
            let parts = try names.map { try readCIFAR(file: join(dir, $0), labelBytes: 1, classes: 10) }
            let test = try readCIFAR(file: join(dir, "test_batch.bin"), labelBytes: 1, classes: 10)
            return (concatenate(parts, classes: 10), test)
        case .cifar100:
            let dir = resolve(path, subdirectory: "cifar-100-binary", marker: "test.bin")
            for name in ["train.bin", "test.bin"] where !FileManager.default.fileExists(atPath: join(dir, name)) {
                throw DatasetError(file: join(dir, name), problem: "missing file (CIFAR-100 needs train.bin and test.bin)")
            }
            let train = try readCIFAR(file: join(dir, "train.bin"), labelBytes: 2, classes: 100)
            let test = try readCIFAR(file: join(dir, "test.bin"), labelBytes: 2, classes: 100)
            return (train, test)
        case .fashion_mnist, .mnist:
            func pick(_ name: String) throws -> String {
                let raw = join(path, name), gz = raw + ".gz"
                if FileManager.default.fileExists(atPath: raw) { return raw }
                if FileManager.default.fileExists(atPath: gz) { return gz }
                throw DatasetError(file: gz, problem: "missing file (neither \(name) nor \(name).gz exists)")
            }
            let train = try readIDX(images: pick("train-images-idx3-ubyte"), labels: pick("train-labels-idx1-ubyte"))
            let test = try readIDX(images: pick("t10k-images-idx3-ubyte"), labels: pick("t10k-labels-idx1-ubyte"))
            return (train, test)
        }
    }

    /// `path`, or `path/subdirectory` when `path` lacks `marker` but the subdirectory has it.
    private static func resolve(_ path: String, subdirectory: String, marker: String) -> String {
        let fm = FileManager.default
        if fm.fileExists(atPath: join(path, marker)) { return path }
        let sub = join(path, subdirectory)
        var isDirectory: ObjCBool = false
        if fm.fileExists(atPath: sub, isDirectory: &isDirectory), isDirectory.boolValue { return sub }
        return path
    }

    static func join(_ directory: String, _ name: String) -> String {
        directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }

    private static func concatenate(_ parts: [ImageSet], classes: Int) -> ImageSet {
        var pixels = [UInt8](), labels = [Int32]()
        let total = parts.reduce(0) { $0 + $1.count }
        pixels.reserveCapacity(total * ImageSet.imageBytes)
        labels.reserveCapacity(total)
        for p in parts {
            pixels.append(contentsOf: p.pixels)
            labels.append(contentsOf: p.labels)
        }
        return ImageSet(pixels: pixels, labels: labels, classes: classes)
    }
}
