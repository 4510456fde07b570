// Dataset reader errors reach the daemon's clients (a failed run's reason), so they must never
// print what was read from the file: a secret given as a dataset file used to come back as
// "bad magic 0x544f502d" ("TOP-"), and header fields and labels were echoed likewise.
import Engine
import Foundation
import Testing
import TestSupport

@Suite struct DatasetErrorContentTests {
    private func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }

    /// The problem a DatasetError states (without the file name, which holds random digits).
    private func message(_ body: () throws -> Any) -> String {
        do { _ = try body(); return "no error" } catch let e as DatasetError { return e.problem } catch { return "\(error)" }
    }

    @Test func aSecretFileGivenAsIDXImagesIsNotEchoed() throws {
        let dir = makeTempDir("content")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let secret = dir + "/secret"
        try Data("TOP-SECRET: the launch code is 0000\n".utf8).write(to: URL(fileURLWithPath: secret))
        let labels = dir + "/labels"
        try Data(be32(0x801) + be32(1) + [3]).write(to: URL(fileURLWithPath: labels))
        for m in [message { try DatasetLoader.readIDX(images: secret, labels: labels) },
                  message { try DatasetLoader.readIDX(images: labels, labels: secret) }] {
            #expect(m.contains("bad magic"), "\(m)")
            #expect(!m.lowercased().contains("544f502d") && !m.contains("TOP-") && !m.contains("0x544f"), "\(m)")
        }
    }

    @Test func headerFieldsAndLabelsAreNotEchoed() throws {
        let dir = makeTempDir("content")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func file(_ name: String, _ bytes: [UInt8]) throws -> String {
            let p = dir + "/" + name
            try Data(bytes).write(to: URL(fileURLWithPath: p))
            return p
        }
        // Dimensions 12345 × 27 × 28: no header value may appear.
        let dims = try file("dims", be32(0x803) + be32(12345) + be32(27) + be32(28))
        let labels = try file("labels", be32(0x801) + be32(3) + [1, 2, 3])
        let m1 = message { try DatasetLoader.readIDX(images: dims, labels: labels) }
        #expect(m1.contains("dimensions") && !m1.contains("12345") && !m1.contains("27"), "\(m1)")
        // A label count of 54321 against 2 images.
        let images = try file("images", be32(0x803) + be32(2) + be32(28) + be32(28) + [UInt8](repeating: 7, count: 2 * 784))
        let many = try file("many", be32(0x801) + be32(54321) + [1, 2])
        let m2 = message { try DatasetLoader.readIDX(images: images, labels: many) }
        #expect(m2.contains("count mismatch") && !m2.contains("54321"), "\(m2)")
        // A declared count of 3 images with the payload of 2.
        let short = try file("short", be32(0x803) + be32(3) + be32(28) + be32(28) + [UInt8](repeating: 7, count: 2 * 784))
        let three = try file("three", be32(0x801) + be32(3) + [1, 2, 3])
        let m3 = message { try DatasetLoader.readIDX(images: short, labels: three) }
        #expect(m3.contains("truncated") && !m3.contains("2352"), "\(m3)")   // 3 × 784, from the header
        // Label bytes 200 (IDX) and 201 (CIFAR) are out of range: the values are not printed.
        let bad = try file("bad", be32(0x801) + be32(2) + [1, 200])
        let m4 = message { try DatasetLoader.readIDX(images: images, labels: bad) }
        #expect(m4.contains("out of range") && !m4.contains("200"), "\(m4)")
        let cifar = try file("cifar.bin", [201] + [UInt8](repeating: 0, count: 3072))
        let m5 = message { try DatasetLoader.readCIFAR(file: cifar, labelBytes: 1, classes: 10) }
        #expect(m5.contains("out of range") && !m5.contains("201"), "\(m5)")
    }
}
