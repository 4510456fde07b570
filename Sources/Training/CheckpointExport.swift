// Exports from a checkpoint for analysis in Python: weights, BatchNorm buffers and pruning masks
// as safetensors (8-byte little-endian header length, JSON header of name → dtype, shape and
// data offsets, raw little-endian data), and the epoch records as CSV.
import Checkpointing
import Engine
import Foundation
import PrunedJSON

public enum CheckpointExport {
    /// Safetensors bytes: every model tensor (f32) and one `<layer>.mask` (u8, 1 = kept) per
    /// pruned layer; optimizer and pruner bookkeeping are left out.
    public static func safetensors(_ s: Snapshot) throws -> [UInt8] {
        var tensors: [(String, String, [Int], [UInt8])] = []
        for e in s.entries where e.dtype == .f32 && !e.name.hasPrefix("optimizer.") && !e.name.hasPrefix("pruner.") {
            let bytes = Array(s.payload[e.offset ..< e.offset + e.byteLength])
            tensors.append((e.name, "F32", e.shape, bytes))
        }
        if let p = s.metadata["model"]?["pruner"], let layers = p["layers"]?.arrayValue, let units = p["units"]?.arrayValue,
           layers.count == units.count {
            for (l, u) in zip(layers, units) {
                guard let name = l.stringValue, let n = u.intValue, n >= 0 else { throw CheckpointError.corruptMetadata("model.pruner") }
                let bits = try s.u8("pruner.mask.\(name)", shape: [(n + 7) / 8])
                tensors.append((name + ".mask", "U8", [n], ModelState.unpack(bits, n).map { $0 ? 1 : 0 }))
            }
        }
        var header: [(String, JSON)] = []
        var offset = 0
        for (name, dtype, shape, bytes) in tensors {
            header.append((name, .object([("dtype", .string(dtype)), ("shape", .array(shape.map { .number(Double($0)) })),
                                          ("data_offsets", .array([.number(Double(offset)), .number(Double(offset + bytes.count))]))])))
            offset += bytes.count
        }
        var meta: [(String, JSON)] = [("format", .string("pt")), ("source", .string("pruned checkpoint"))]
        if let run = s.metadata["run"] { meta.append(("position", .string(run.rendered))) }
        header.insert(("__metadata__", .object(meta)), at: 0)
        var text = Array(JSON.object(header).rendered.utf8)
        while text.count % 8 != 0 { text.append(UInt8(ascii: " ")) }
        var out: [UInt8] = []
        out.reserveCapacity(8 + text.count + offset)
        for i in 0 ..< 8 { out.append(UInt8(truncatingIfNeeded: UInt64(text.count) >> (8 * UInt64(i)))) }
        out += text
        for t in tensors { out += t.3 }
        return out
    }

    /// The epoch records as CSV (the scalar columns of metrics.jsonl).
    public static func csv(_ s: Snapshot) throws -> String {
        guard let items = s.metadata["records"]?.arrayValue else { throw CheckpointError.corruptMetadata("no records") }
        let records = try items.map { j -> EpochRecord in
            guard let r = RunCheckpoint.decodeRecord(j) else { throw CheckpointError.corruptMetadata("malformed epoch record") }
            return r
        }
        let columns = ["epoch", "train_loss", "train_acc", "train_acc5", "pre_test_loss", "pre_test_acc", "pre_test_acc5",
                       "test_loss", "test_acc", "test_acc5", "lr", "seconds", "train_images_per_second", "trained", "p_count",
                       "avg_pruned_score", "macs_per_image"]
        var out = columns.joined(separator: ",") + "\n"
        for r in records {
            let j = MetricsFormat.json(r)
            out += columns.map { c -> String in
                switch j[c] {
                case .number(let d)?: return JSON.format(d)
                case .bool(let b)?: return b ? "true" : "false"
                default: return ""
                }
            }.joined(separator: ",") + "\n"
        }
        return out
    }
}
