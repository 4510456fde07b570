// `pruned ckpt`: inspect, verify, export and benchmark checkpoints (Checkpointing's format and
// store; Training's export and benchmark).
import ArgumentParser
import Checkpointing
import Engine
import Foundation
import RunLayout
import Training

struct Ckpt: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ckpt", abstract: "Inspect, verify and benchmark checkpoints.",
        subcommands: [CkptInspect.self, CkptVerify.self, CkptExport.self, CkptBench.self])
}

struct CkptInspect: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "inspect", abstract: "Show a checkpoint's header, tensors, sizes and checksum status.")
    @Argument(help: "A checkpoint file (.pck).") var file: String
    @Flag(name: .long, help: "Also print the metadata JSON.") var metadata = false

    func run() throws {
        do {
            let bytes = try CheckpointStore.readAll(file)
            let info = try CheckpointFile.inspect(bytes)
            print("file          \(file)")
            print("format        version \(info.version), flags \(info.flags)\(info.flags & CheckpointFile.flagShuffled != 0 ? " (f32 byte-shuffled)" : "")")
            print("size          \(info.fileBytes) bytes; payload \(info.payloadBytes) → \(info.compressedBytes) compressed "
                  + String(format: "(ratio %.3f)", info.compressionRatio))
            print(String(format: "checksum      CRC32 %08x (ok)", info.storedCRC))
            do { _ = try CheckpointFile.decode(bytes); print("zstd frame    ok (content checksum verified)") } catch {
                print("zstd frame    BAD: \(error)"); throw ExitCode(1)
            }
            if let run = info.metadata["run"] {
                print("position      \(run["epochs_completed"]?.intValue ?? -1) epochs done, step \(run["step_in_epoch"]?.intValue ?? -1) of the next")
            }
            if let p = info.metadata["provenance"] { print("provenance    \(p.rendered)") }
            print("tensors       \(info.entries.count)")
            for e in info.entries {
                print("  \(e.name.padding(toLength: 44, withPad: " ", startingAt: 0)) \(e.dtype.name) \(e.shape)  \(e.byteLength) B")
            }
            if metadata { print(info.metadata.pretty) }
        } catch let e as CheckpointError {
            printErr("pruned: \(file): \(e)")
            throw ExitCode(1)
        }
    }
}

struct CkptVerify: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "verify", abstract: "Verify every checkpoint of a run directory (read-only).")
    @Argument(help: "A run directory (or its checkpoints/ directory).") var dir: String

    func run() throws {
        let d = FileManager.default.fileExists(atPath: RunDirectory(dir).checkpoints) ? RunDirectory(dir).checkpoints : dir
        let store = CheckpointStore(directory: d)
        let results = store.verifyAll()
        if results.isEmpty { printErr("pruned: no checkpoints in \(d)"); throw ExitCode(1) }
        var bad = 0
        for r in results {
            if let e = r.error { bad += 1; print("BAD  \(r.file): \(e)") } else { print("ok   \(r.file)") }
        }
        let quarantined = ((try? FileManager.default.contentsOfDirectory(atPath: d)) ?? []).filter { $0.hasSuffix(".corrupt") }
        for q in quarantined.sorted() { print("quarantined  \(q)") }
        if let latest = store.latestPointer() {
            print("LATEST -> \(latest)\(results.contains { $0.file == latest } ? "" : " (missing)")")
        }
        if let newestGood = results.last(where: { $0.error == nil }) { print("a resume would use \(newestGood.file)") }
        if bad > 0 { throw ExitCode(1) }
    }
}

struct CkptBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench", abstract: "Time checkpoint write and read for full-width models with Adam state (use a release build).")
    @Option(name: .long, help: "Comma-separated models.") var models = "vgg11_bn,resnet18"
    @Option(name: .long, help: "zstd level.") var level = 1
    @Option(name: .long, help: "Scratch directory (a checkpoints/ subdirectory is created and removed).") var dir = "/tmp"

    func run() throws {
        for name in models.split(separator: ",") {
            guard let arch = Architecture(rawValue: String(name)) else { throw ValidationError("unknown model \(name)") }
            for line in try CheckpointBenchmark.run(architecture: arch, level: level, directory: dir + "/pruned-ckpt-bench-\(getpid())") {
                print(line); fflush(stdout)
            }
        }
    }
}

struct CkptExport: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "export", abstract: "Export a checkpoint's weights and masks (safetensors) and metrics (CSV).")
    @Argument(help: "A checkpoint file (.pck).") var file: String
    @Option(name: .long, help: "Write weights, BatchNorm buffers and masks here (safetensors).") var safetensors: String?
    @Option(name: .long, help: "Write the epoch records here (CSV).") var csv: String?

    func run() throws {
        guard safetensors != nil || csv != nil else { throw ValidationError("give --safetensors and/or --csv") }
        do {
            let snap = try CheckpointFile.decode(try CheckpointStore.readAll(file))
            if let path = safetensors {
                try CheckpointStore.durableWrite(try CheckpointExport.safetensors(snap), to: path, crashHook: false)
                print("wrote \(path)")
            }
            if let path = csv {
                try CheckpointStore.durableWrite(Array(try CheckpointExport.csv(snap).utf8), to: path, crashHook: false)
                print("wrote \(path)")
            }
        } catch let e as CheckpointError {
            printErr("pruned: \(file): \(e)")
            throw ExitCode(1)
        }
    }
}
