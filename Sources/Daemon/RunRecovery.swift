// Rebuilding a run's record from its own directory, for runs the ledger does not know (the
// ledger was deleted, emptied, cut short or a line failed its checksum). A run directory holds
// enough: origin.json (who created it and how), spec.json, metrics.jsonl, checkpoints/ and
// summary.json. A recovered run is `completed` when summary.json exists, else `interrupted`;
// it is never started by itself, and its files are never changed by the recovery.
import Checkpointing
import Control
import Foundation
import PrunedJSON
import RunLayout

extension RunRecord {
    /// The facts fixed when the run was created, written once to origin.json.
    var originJSON: JSON {
        .object([
            ("id", .string(id.description)), ("owner", .number(Double(owner))), ("owner_name", .string(ownerName)),
            ("group", group.map { .string($0) } ?? .null), ("tags", .array(tags.map { .string($0) })),
            ("priority", .number(Double(priority))), ("created", .number(created)), ("source", source),
            ("fork_of", forkOf.map { .string($0) } ?? .null), ("fork_checkpoint", forkCheckpoint.map { .string($0) } ?? .null),
        ])
    }

    /// Rebuilds a record from `dir`'s files. `owner` is used when origin.json is missing or
    /// unreadable (the run then belongs to the daemon's user: only admins may change it).
    static func recovered(id: RunID, directory dir: RunDirectory, order: Int, owner: UInt32, ownerName: String) throws -> RunRecord {
        guard let specText = try? String(contentsOfFile: dir.spec, encoding: .utf8) else {
            throw DaemonError("\(dir.spec) is missing or unreadable")
        }
        let spec: JSON
        do { spec = try JSON.parse(specText) } catch { throw DaemonError("\(dir.spec) does not parse: \(error)") }
        guard let epochs = spec["epochs"]?.intValue, epochs > 0 else { throw DaemonError("\(dir.spec) has no valid 'epochs'") }
        let origin = (try? String(contentsOfFile: dir.origin, encoding: .utf8)).flatMap { try? JSON.parse($0) }
        let originOwner = origin?["owner"]?.intValue.flatMap { UInt32(exactly: $0) }
        var r = RunRecord(id: id, state: .interrupted, owner: originOwner ?? owner,
                          ownerName: originOwner != nil ? (origin?["owner_name"]?.stringValue ?? String(originOwner ?? owner)) : ownerName,
                          order: order, spec: spec, epochs: epochs, created: origin?["created"]?.doubleValue ?? RunRecord.modified(dir.spec))
        if let origin {
            r.group = origin["group"]?.stringValue
            r.tags = (origin["tags"]?.arrayValue ?? []).compactMap(\.stringValue)
            r.priority = origin["priority"]?.intValue.map { min(max($0, -1000), 1000) } ?? 0
            r.source = origin["source"] ?? .null
            r.forkOf = origin["fork_of"]?.stringValue
            r.forkCheckpoint = origin["fork_checkpoint"]?.stringValue
        }
        if let text = try? String(contentsOfFile: dir.metrics, encoding: .utf8) {
            for line in text.split(separator: "\n") {
                guard let row = try? JSON.parse(String(line)), let epoch = row["epoch"]?.intValue else { continue }
                r.epochsDone = max(r.epochsDone, epoch)
                if let acc = row["test_acc"]?.doubleValue {
                    r.lastTestAcc = acc
                    r.bestTestAcc = max(r.bestTestAcc ?? acc, acc)
                }
            }
        }
        r.lastCheckpoint = CheckpointStore(directory: dir.checkpoints).list().last?.file
        r.starts = r.lastCheckpoint == nil && r.epochsDone == 0 ? 0 : 1
        if let text = try? String(contentsOfFile: dir.summary, encoding: .utf8), (try? JSON.parse(text)) != nil {
            r.state = .completed
            r.finished = RunRecord.modified(dir.summary)
            r.epochsDone = epochs
        } else {
            r.reason = "recovered from its run directory (the ledger had no record of it); resume it to continue from "
                + (r.lastCheckpoint.map { "its newest checkpoint \($0)" } ?? "the start")
        }
        return r
    }

    static func modified(_ path: String) -> Double {
        var st = stat()
        guard stat(path, &st) == 0 else { return 0 }
        return Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9
    }
}

extension Daemon {
    /// Run ids named by an entry under runs/, whatever the ledger says; `canonical` when the
    /// entry is exactly the directory the daemon would use for that id (`r-0042`).
    static func directoryRunIDs(_ runsDirectory: String) -> [(id: RunID, canonical: Bool)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: runsDirectory)) ?? []
        return names.filter { $0.hasPrefix("r-") }.compactMap { name in RunID(name).map { ($0, $0.description == name) } }
            .sorted { $0.id < $1.id }
    }
}
