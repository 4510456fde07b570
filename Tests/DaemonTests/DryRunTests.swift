// `prunectl submit --dry-run` (protocol `submit dry_run=true`): the daemon validates, answers
// with the canonical spec and the schedule, and queues nothing.
import Control
@testable import Daemon
import Foundation
import PrunedJSON
import Testing
import TestSupport

@Suite(.serialized, .enabled(if: haveFashionMNIST && FileManager.default.isExecutableFile(atPath: prunectlBinary)))
struct DryRunTests {
    @Test func dryRunShowsTheScheduleAndQueuesNothing() throws {
        let d = try TestDaemon()
        defer { d.stop(); try? FileManager.default.removeItem(atPath: d.dir) }
        let s = d.socketPath
        let base = ["submit", "F2_VGG_4", "--set", "dataset.kind=fashion_mnist", "--set", "dataset.path=" + fashionMNIST,
                    "--set", "width=0.25", "--set", "epochs=24", "--dry-run"]
        let text = try prunectl(s, base + ["--seeds", "1..2"])
        #expect(text.status == 0, "\(text.err)")
        #expect(text.out.components(separatedBy: "would queue F2_VGG_4").count == 3, "\(text.out)")
        #expect(text.out.contains("(seed 2, vgg11_bn, 24 epochs); nothing submitted"))
        #expect(text.out.contains("scaled from 325 to 24 epochs") && text.out.contains("note: tail:") && text.out.contains("features.conv8"))
        let json = try prunectl(s, base + ["--json"])
        let reply = try #require(json.json.first)
        #expect(reply["dry_run"] == .bool(true) && reply["spec"]?["epochs"]?.intValue == 24)
        #expect(reply["spec"]?["scaling"]?["from_epochs"]?.intValue == 325)
        #expect(reply["schedule"]?["epochs"]?.arrayValue?.count == 24)
        #expect(reply["schedule"]?["layers"]?.arrayValue?.map { $0["units"]?.intValue } == [128, 128, 128, 128])
        // Nothing was queued, and a bad spec is refused as a submit would be.
        #expect(try prunectl(s, ["list", "--json"]).json.first?["count"]?.intValue == 0)
        let bad = try prunectl(s, base + ["--set", "pruning.layers.0.fraction=2"])
        #expect(bad.status != 0 && bad.err.contains("fraction"), "\(bad.err)")
    }
}
