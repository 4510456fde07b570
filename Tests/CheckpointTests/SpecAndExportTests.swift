// The run spec's "checkpoint" section (strict, canonical only when set) and the exports:
// safetensors that a plain JSON + byte reader loads, and metrics CSV.
import Checkpointing
import Engine
import Foundation
import PrunedJSON
import Testing
import TestSupport
@testable import Training

@Suite struct SpecAndExportTests {
    let base = #"{"model": "vgg11_bn", "dataset": {"kind": "cifar10", "path": "/d"}, "epochs": 4"#

    @Test func checkpointSectionIsStrictAndCanonical() throws {
        let plain = try RunSpec.parse(base + "}")
        #expect(plain.checkpoint == nil)
        #expect(plain.json["checkpoint"] == nil, "absent from the canonical spec unless set")
        let set = try RunSpec.parse(base + #", "checkpoint": {"every_steps": 50, "every_seconds": 600, "keep_last": 5, "level": 3}}"#)
        #expect(set.checkpoint == CheckpointSpec(everySteps: 50, everySeconds: 600, keepLast: 5, level: 3))
        #expect(try RunSpec(json: set.json) == set)
        let defaults = try RunSpec.parse(base + #", "checkpoint": {}}"#)
        #expect(defaults.checkpoint == CheckpointSpec())
        for (bad, field) in [(#"{"every_steps": 0}"#, "checkpoint.every_steps"), (#"{"every_seconds": -1}"#, "checkpoint.every_seconds"),
                             (#"{"keep_last": 0}"#, "checkpoint.keep_last"), (#"{"keep_milestones": -1}"#, "checkpoint.keep_milestones"), (#"{"level": 40}"#, "checkpoint.level"),
                             (#"{"every_step": 5}"#, "checkpoint.every_step"), (#"{"every_steps": 1.5}"#, "checkpoint.every_steps")] {
            #expect { try RunSpec.parse(base + #", "checkpoint": "# + bad + "}") } throws: { e in
                (e as? SpecError)?.field == field
            }
        }
        #expect { try RunSpec.parse(base + #", "checkpoint": {"every_step": 5}}"#) } throws: { e in
            "\(e)".contains("every_steps, every_seconds, keep_last, keep_milestones, level")
        }
    }

    @Test func safetensorsAndCSVExport() throws {
        let (t, records) = try trainedTrainer()
        let snap = try CheckpointFile.decode(try CheckpointFile.encode(RunCheckpoint.snapshot(t, records: records)))
        let st = try CheckpointExport.safetensors(snap)
        let n = (0 ..< 8).reduce(0) { $0 | Int(st[$1]) << (8 * $1) }
        #expect(n % 8 == 0)
        let header = try JSON.parse(try #require(String(bytes: st[8 ..< 8 + n], encoding: .utf8)))
        let body = 8 + n
        // A weight reads back bit for bit.
        let slot = try #require(t.network.store.parameter(named: "features.conv5.weight"))
        let w = try #require(header["features.conv5.weight"])
        #expect(w["dtype"]?.stringValue == "F32")
        #expect(w["shape"]?.arrayValue?.compactMap { $0.intValue } == slot.shape)
        let offs = try #require(w["data_offsets"]?.arrayValue?.compactMap { $0.intValue })
        let bytes = Array(st[body + offs[0] ..< body + offs[1]])
        let expected = UnsafeRawBufferPointer(start: t.network.store.value(slot), count: slot.count * 4)
        #expect(bytes == Array(expected))
        // Masks: 1 = kept, matching the pruner.
        let m = try #require(header["features.conv5.mask"])
        let mo = try #require(m["data_offsets"]?.arrayValue?.compactMap { $0.intValue })
        #expect(Array(st[body + mo[0] ..< body + mo[1]]) == (t.pruner?.kept[0].map { $0 ? UInt8(1) : 0 } ?? []))
        #expect(header["optimizer.moment1"] == nil)
        let csv = try CheckpointExport.csv(snap).split(separator: "\n")
        #expect(csv.count == 1 + records.count)
        #expect(csv[0].hasPrefix("epoch,train_loss"))
        #expect(csv[1].hasPrefix("1,"))
    }

    @Test func cadenceEveryStepsAndEverySeconds() throws {
        let (t, _) = try trainedTrainer()   // optimizer step 5
        final class Clock { var now = 100.0 }
        let clock = Clock()
        let dir = makeTempDir("cadence")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let bySteps = Checkpointer(directory: dir, policy: CheckpointSpec(everySteps: 5), clock: { clock.now })
        #expect(bySteps.due(t))
        let bySteps2 = Checkpointer(directory: dir, policy: CheckpointSpec(everySteps: 2), clock: { clock.now })
        #expect(!bySteps2.due(t))
        let byTime = Checkpointer(directory: dir, policy: CheckpointSpec(everySeconds: 30), clock: { clock.now })
        #expect(!byTime.due(t))
        clock.now += 31
        #expect(byTime.due(t))
        try byTime.save(t, records: [])
        #expect(!byTime.due(t), "the timer restarts at each save")
        #expect(byTime.written.count == 1 && byTime.written[0].contains("-e00001-s000002"))
    }
}
