// Where the package and its debug binaries are, for tests that run `pruned` or `prunectl` as
// processes or read files of the repository (examples, transcripts, clients).
import Foundation

/// The package's root directory (this file is Tests/TestSupport/Paths.swift).
public let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

/// The debug build of `pruned` (`swift build`); tests that need it check that it exists.
public let prunedBinary = packageRoot + "/.build/debug/pruned"

/// The debug build of `prunectl`.
public let prunectlBinary = packageRoot + "/.build/debug/prunectl"
