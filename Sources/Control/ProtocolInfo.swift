// The protocol's constants: its version, the software version, and the limits the daemon
// enforces and the clients respect.

/// Protocol constants shared by the daemon and its clients.
public enum ProtocolInfo {
    /// Bumped only for incompatible changes; fields are only ever added within a version.
    public static let version = 1
    /// The version of pruned itself (daemon, `pruned`, `prunectl`): the one place it is written.
    public static let softwareVersion = "0.1.0"
    public static let defaultMaxLineBytes = 65_536
    /// Tags of one run (`tag=` in one `submit`, `set` or `fork`).
    public static let maxTags = 64
    /// Spec overrides (`PATH=VALUE`) in one `submit`, `set` or `fork`.
    public static let maxOverrides = 64
    /// Dot-separated segments of one override path (`pruning.layers.0.fraction` has 4).
    public static let maxOverrideSegments = 8
    /// Bytes of one override path.
    public static let maxOverridePathBytes = 256
    /// Nesting of arrays and objects in one override's value (`pruning.layers=[{…}]` is 2).
    /// An inline `spec={…}` may nest up to `JSON.maxDepth` (64) levels.
    public static let maxOverrideValueDepth = 16
}
