// A run's lifecycle state, as requests filter by it and replies report it.

/// A run's lifecycle state.
public enum RunState: String, CaseIterable, Sendable, Codable {
    case queued, held, running, paused, interrupted, completed, failed, cancelled

    /// No further transitions happen by themselves.
    public var isTerminal: Bool { self == .completed || self == .failed || self == .cancelled }
}
