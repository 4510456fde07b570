// swift-tools-version:6.0
// pruned: a pruning-research training daemon in Swift on OpenBLAS.
import PackageDescription

/// Kernels must be fast even in `swift test` (debug): optimise the numeric targets always.
let optimised: [SwiftSetting] = [.unsafeFlags(["-O"]), .swiftLanguageMode(.v5)]
let plain: [SwiftSetting] = [.swiftLanguageMode(.v5)]

let package = Package(
    name: "pruned",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "pruned", targets: ["pruned"]),
        .executable(name: "prunectl", targets: ["prunectl"]),
        .library(name: "Engine", targets: ["Engine"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CZstd", path: "Sources/CZstd", pkgConfig: "libzstd",
                       providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CSystemd", path: "Sources/CSystemd", pkgConfig: "libsystemd",
                       providers: [.apt(["libsystemd-dev"])]),
        .target(name: "Engine", dependencies: ["CBLAS", "CZlib"], swiftSettings: optimised),
        .target(name: "PrunedJSON", swiftSettings: plain),
        .target(name: "RunLayout", swiftSettings: plain),
        .target(name: "Checkpointing", dependencies: ["Engine", "PrunedJSON", "CZstd", "CZlib"], swiftSettings: optimised),
        .target(name: "Training", dependencies: ["Engine", "PrunedJSON", "RunLayout", "Checkpointing", "Results"], swiftSettings: optimised),
        .target(name: "Control", dependencies: ["PrunedJSON"], swiftSettings: plain),
        .target(name: "Results", dependencies: ["PrunedJSON", "RunLayout"], swiftSettings: plain),
        .executableTarget(name: "prunectl", dependencies: [
            "Control", "ControlClient", "Results", "PrunedJSON",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], swiftSettings: plain),
        .target(name: "ControlClient", dependencies: ["Control", "PrunedJSON"], swiftSettings: plain),
        .target(name: "Daemon", dependencies: ["Control", "ControlClient", "Training", "Checkpointing", "Engine", "PrunedJSON", "RunLayout", "CSystemd"],
                swiftSettings: plain),
        .executableTarget(name: "pruned", dependencies: [
            "Training", "RunLayout", "Engine", "Checkpointing", "Daemon", "Control", "Results",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], swiftSettings: plain),
        // Helpers shared by the test targets (paths, temp directories, Fashion-MNIST, synthetic
        // data, running a program); a regular target so that test targets can depend on it.
        .target(name: "TestSupport", dependencies: ["Training", "Engine"], path: "Tests/TestSupport", swiftSettings: plain),
        .testTarget(name: "EngineTests", dependencies: ["Engine", "TestSupport"], swiftSettings: optimised),
        .testTarget(name: "CheckpointTests", dependencies: ["Checkpointing", "Training", "Engine", "PrunedJSON", "TestSupport"],
                    exclude: ["Fixtures"], swiftSettings: plain),
        .testTarget(name: "ResultsTests", dependencies: ["Results", "PrunedJSON"], swiftSettings: plain),
        .testTarget(name: "ControlTests", dependencies: ["Control", "PrunedJSON", "Results"], swiftSettings: plain),
        .testTarget(name: "DaemonTests", dependencies: ["Daemon", "Control", "ControlClient", "Training", "PrunedJSON", "Checkpointing", "Results", "RunLayout",
                                                        "TestSupport"], swiftSettings: plain),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "Engine", "PrunedJSON", "Checkpointing", "Results", "TestSupport"], swiftSettings: plain),
    ]
)
