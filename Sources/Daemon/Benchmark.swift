// `pruned daemon-bench`: control-plane cost while a real run trains. An in-process daemon on a
// temp state dir trains Conv4 on Fashion-MNIST; windows alternate quiet / loaded (N clients
// polling `status` and `show`), and we report training steps/s per window (ratio loaded/quiet)
// and request round-trip latency p50/p99 (one prober quiet; every poller loaded).
import Control
import ControlClient
import Foundation
import PrunedJSON
import Synchronization
import Training
import Checkpointing

public struct DaemonBenchmark {
    public var dataPath = "/usr/share/datasets/fashion-mnist"
    public var model = "conv4"
    public var width = 1.0
    public var threads = 2
    public var clients = 100
    /// Seconds between two requests of one polling client.
    public var pollInterval = 0.1
    /// Seconds per window; windows run quiet, loaded, quiet, loaded, …
    public var window = 20.0
    public var pairs = 2

    public init() {}

    public struct Result {
        public var quietStepsPerSecond: [Double] = []
        public var loadedStepsPerSecond: [Double] = []
        public var quietLatencies: [Double] = []
        public var loadedLatencies: [Double] = []
        public var loadedRequests = 0
        public var loadedErrors = 0
        public var imagesPerStep = 128

        public var slowdown: Double {
            let q = quietStepsPerSecond.reduce(0, +) / Double(max(quietStepsPerSecond.count, 1))
            let l = loadedStepsPerSecond.reduce(0, +) / Double(max(loadedStepsPerSecond.count, 1))
            return q > 0 ? 1 - l / q : 0
        }
    }

    static func percentile(_ xs: [Double], _ p: Double) -> Double {
        guard !xs.isEmpty else { return .nan }
        let s = xs.sorted()
        return s[min(s.count - 1, Int((p * Double(s.count - 1)).rounded()))]
    }

    public func run(log: (String) -> Void) throws -> Result {
        let bench = try BenchDaemon(tag: "bench", threads: threads, maxConnections: clients + 16)
        defer { bench.stop() }
        let (daemon, admin) = (bench.daemon, bench.admin)
        let spec = #"{"model":"\#(model)","width":\#(width),"dataset":{"kind":"fashion_mnist","path":"\#(dataPath)","test_limit":1000},"#
            + #""epochs":1000,"batch_size":128,"seed":1,"checkpoint":{"every_steps":100000}}"#
        let submitted = try admin.call(try Request.parse("submit spec=" + spec))
        let id = try SubmitReply(json: submitted).id
        func steps() -> Int {
            guard let r = daemon.record(id) else { return 0 }
            return r.epochsDone * r.stepsPerEpoch + r.step
        }
        log("waiting for \(id) to start training …")
        let startDeadline = Date().addingTimeInterval(300)
        while steps() < 3 && Date() < startDeadline { usleep(50_000) }
        guard steps() >= 3 else { throw ClientError("the run did not start training") }

        var result = Result()
        let statusRequest = try Request.parse("status")
        let showRequest = try Request.parse("show \(id)")
        for pair in 0 ..< pairs {
            // Quiet window: one prober measures round trips back to back, 20 per second.
            do {
                let s0 = steps(), t0 = Trainer.monotonicSeconds()
                let prober = try ControlConnection(path: bench.socketPath)
                while Trainer.monotonicSeconds() - t0 < window {
                    let a = Trainer.monotonicSeconds()
                    try prober.call(pair % 2 == 0 ? statusRequest : showRequest)
                    result.quietLatencies.append(Trainer.monotonicSeconds() - a)
                    usleep(50_000)
                }
                let rate = Double(steps() - s0) / (Trainer.monotonicSeconds() - t0)
                result.quietStepsPerSecond.append(rate)
                log(String(format: "quiet  window %d: %.3f steps/s (%.1f img/s)", pair + 1, rate, rate * 128))
            }
            // Loaded window: N clients each polling status and show every pollInterval seconds.
            do {
                let stop = Atomic<Bool>(false)
                let lat = Mutex<[Double]>([])
                let errors = Atomic<Int>(0)
                let group = DispatchGroup()
                for k in 0 ..< clients {
                    group.enter()
                    let th = Thread { [socketPath = bench.socketPath, pollInterval] in
                        defer { group.leave() }
                        guard let c = try? ControlConnection(path: socketPath) else { errors.add(1, ordering: .relaxed); return }
                        var mine: [Double] = []
                        var i = k
                        while !stop.load(ordering: .relaxed) {
                            let a = Trainer.monotonicSeconds()
                            do { try c.call(i % 2 == 0 ? statusRequest : showRequest) } catch { errors.add(1, ordering: .relaxed); return }
                            mine.append(Trainer.monotonicSeconds() - a)
                            i += 1
                            usleep(UInt32(pollInterval * 1e6))
                        }
                        lat.withLock { $0 += mine }
                    }
                    th.stackSize = 1 << 20
                    th.start()
                }
                usleep(500_000)
                let s0 = steps(), t0 = Trainer.monotonicSeconds()
                usleep(UInt32(window * 1e6))
                let rate = Double(steps() - s0) / (Trainer.monotonicSeconds() - t0)
                stop.store(true, ordering: .relaxed)
                group.wait()
                let got = lat.withLock { $0 }
                result.loadedLatencies += got
                result.loadedRequests += got.count
                result.loadedErrors += errors.load(ordering: .relaxed)
                result.loadedStepsPerSecond.append(rate)
                log(String(format: "loaded window %d: %.3f steps/s (%.1f img/s), %d requests from %d clients", pair + 1, rate, rate * 128,
                           got.count, clients))
            }
        }
        _ = try? admin.call(try Request.parse("cancel \(id)"))
        return result
    }

    /// Round trips of `status` (one prober, back to back every 5 ms) while `forks` forks of a
    /// full-width checkpoint of `forkModel` are made one after another, against a quiet window
    /// of the same length before them. Returns JSON lines: quiet and forking latencies, and the
    /// time each fork took to answer.
    public func forkLatency(model forkModel: String = "vgg11_bn", forks: Int = 5, log: (String) -> Void) throws -> [JSON] {
        let bench = try BenchDaemon(tag: "forkbench", threads: threads, maxConnections: 128)
        defer { bench.stop() }
        let (daemon, admin) = (bench.daemon, bench.admin)
        let spec = #"{"model":"\#(forkModel)","width":1,"dataset":{"kind":"fashion_mnist","path":"\#(dataPath)","train_limit":256,"test_limit":256},"#
            + #""epochs":10,"batch_size":128,"seed":1}"#
        let submitted = try admin.call(try Request.parse("submit hold=true spec=" + spec))
        let id = try SubmitReply(json: submitted).id
        // The source run's checkpoint, as a run writes it after one training step (so that the
        // optimizer moments are real numbers, as in any checkpoint worth forking).
        let runSpec = try RunSpec(json: try JSON.parse(spec))
        let trainer = try Trainer(spec: runSpec, data: try PreparedData.load(runSpec.data), threads: threads)
        _ = try trainer.runEpoch { _ in true }
        let file = try Checkpointer(directory: daemon.runDirectory(id).checkpoints, policy: CheckpointSpec()).save(trainer, records: [])
        let bytes = (try? FileManager.default.attributesOfItem(atPath: daemon.runDirectory(id).checkpoint(file))[.size] as? Int) ?? 0
        log("source checkpoint \(file): \(bytes) bytes (\(forkModel), width 1)")

        let prober = try ControlConnection(path: bench.socketPath)
        let status = try Request.parse("status")
        func probe(while busy: () -> Bool) throws -> [Double] {
            var out: [Double] = []
            while busy() {
                let a = Trainer.monotonicSeconds()
                try prober.call(status)
                out.append(Trainer.monotonicSeconds() - a)
                usleep(5_000)
            }
            return out
        }
        let quietEnd = Trainer.monotonicSeconds() + 5
        let quiet = try probe { Trainer.monotonicSeconds() < quietEnd }
        let forking = Atomic<Bool>(true)
        let forkTimes = Mutex<[Double]>([])
        let forkErrors = Mutex<[String]>([])
        let forker = Thread { [socketPath = bench.socketPath] in
            defer { forking.store(false, ordering: .relaxed) }
            guard let c = try? ControlConnection(path: socketPath), let request = try? Request.parse("fork \(id) hold=true") else { return }
            for _ in 0 ..< forks {
                let a = Trainer.monotonicSeconds()
                do { try c.call(request) } catch { forkErrors.withLock { $0.append("\(error)") }; return }
                let took = Trainer.monotonicSeconds() - a
                forkTimes.withLock { $0.append(took) }
            }
        }
        forker.start()
        let busy = try probe { forking.load(ordering: .relaxed) }
        if let e = forkErrors.withLock({ $0.first }) { throw ClientError("fork failed: \(e)") }
        let took = forkTimes.withLock { $0 }
        func row(_ load: String, _ xs: [Double]) -> JSON {
            .object([("measure", .string("status latency")), ("load", .string(load)), ("requests", .number(Double(xs.count))),
                     ("p50_ms", .number(DaemonBenchmark.percentile(xs, 0.5) * 1000)), ("p99_ms", .number(DaemonBenchmark.percentile(xs, 0.99) * 1000)),
                     ("max_ms", .number((xs.max() ?? .nan) * 1000))])
        }
        return [
            row("quiet", quiet),
            row("\(forks) forks of a \(bytes)-byte \(forkModel) checkpoint", busy),
            .object([("measure", .string("fork reply")), ("forks", .number(Double(took.count))),
                     ("median_ms", .number(DaemonBenchmark.percentile(took, 0.5) * 1000)), ("max_ms", .number((took.max() ?? .nan) * 1000))]),
        ]
    }

    public static func report(_ r: Result, clients: Int, pollInterval: Double) -> [JSON] {
        let q = r.quietStepsPerSecond.reduce(0, +) / Double(max(r.quietStepsPerSecond.count, 1))
        let l = r.loadedStepsPerSecond.reduce(0, +) / Double(max(r.loadedStepsPerSecond.count, 1))
        return [
            .object([("measure", .string("latency")), ("load", .string("quiet")), ("requests", .number(Double(r.quietLatencies.count))),
                     ("p50_ms", .number(percentile(r.quietLatencies, 0.5) * 1000)), ("p99_ms", .number(percentile(r.quietLatencies, 0.99) * 1000))]),
            .object([("measure", .string("latency")), ("load", .string("\(clients) clients every \(pollInterval) s")),
                     ("requests", .number(Double(r.loadedLatencies.count))), ("errors", .number(Double(r.loadedErrors))),
                     ("p50_ms", .number(percentile(r.loadedLatencies, 0.5) * 1000)), ("p99_ms", .number(percentile(r.loadedLatencies, 0.99) * 1000))]),
            .object([("measure", .string("training")), ("quiet_images_per_second", .number(q * 128)),
                     ("loaded_images_per_second", .number(l * 128)), ("slowdown_percent", .number(r.slowdown * 100))]),
        ]
    }
}

/// A daemon in this process on a temporary state directory, for the benchmarks, with one
/// connection ready; `stop()` stops it and removes the directory.
final class BenchDaemon {
    let directory: String
    let daemon: Daemon
    let admin: ControlConnection
    var socketPath: String { directory + "/s" }
    private let finished = DispatchSemaphore(value: 0)

    init(tag: String, threads: Int, maxConnections: Int) throws {
        directory = "/tmp/pruned-\(tag)-\(getpid())"
        try? FileManager.default.removeItem(atPath: directory)
        var config = DaemonConfiguration(stateDirectory: directory + "/state")
        config.socketPath = directory + "/s"
        config.threadsPerRun = threads
        config.maxConnections = maxConnections
        let daemon = try Daemon(configuration: config, logger: Logger(journal: false, capture: false, echo: false))
        self.daemon = daemon
        let finished = self.finished
        let t = Thread {
            do { try daemon.run() } catch { FileHandle.standardError.write(Data("daemon: \(error)\n".utf8)) }
            finished.signal()
        }
        t.stackSize = 8 << 20
        t.start()
        var admin: ControlConnection?
        for _ in 0 ..< 200 where admin == nil {
            admin = try? ControlConnection(path: directory + "/s")
            if admin == nil { usleep(20_000) }
        }
        guard let admin else {
            daemon.requestStop("benchmark failed")
            throw ClientError("the benchmark daemon did not start")
        }
        self.admin = admin
    }

    func stop() {
        daemon.requestStop("benchmark done")
        _ = finished.wait(timeout: .now() + 120)
        try? FileManager.default.removeItem(atPath: directory)
    }
}
